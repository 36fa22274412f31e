import TideCLI

@main
struct Entrypoint {
    static func main() async { await TideCommand.main() }
}
