// The C library alone, and @preconcurrency: Swift 6 refuses to read the mutable C global `stdout` otherwise, and
// Foundation (which re-exports it without the attribute) is not imported here.
#if canImport(Glibc)
    @preconcurrency import Glibc
#elseif canImport(Musl)
    @preconcurrency import Musl
#elseif canImport(Darwin)
    @preconcurrency import Darwin
#endif

/// Makes stdout flush at every newline, as it does on a terminal. Redirected to a file or a pipe, C stdio (which
/// Swift's `print` writes through) buffers whole blocks, so `tide reconcile --watch > log` would show nothing for
/// minutes, and stdout's lines would come out of order with stderr's, which are written unbuffered.
///
/// Called once at start-up, before anything is printed (setvbuf must precede any other operation on the stream).
func lineBufferStandardOutput() {
    setvbuf(stdout, nil, _IOLBF, 0)
}
