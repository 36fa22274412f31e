import Foundation

/// Parses durations as manifests write them: `90s`, `5m`, `1h30m`, `500ms`, `2d`. A bare number is seconds.
public enum ManifestDuration {
    /// The longest duration Tide takes anywhere: ten years. Longer ones (and `inf`, `nan`, `1e300`) are refused
    /// where they are read, so no later conversion to an integer number of seconds or nanoseconds can overflow.
    public static let maximum: Double = 3650 * 86_400

    /// Seconds, or nil when `text` is not a duration, or is longer than `maximum`.
    public static func seconds(_ text: String) -> Double? {
        guard let value = unbounded(text), value.isFinite, value <= maximum else { return nil }
        return value
    }

    /// True when `text` reads as a duration but is longer than `maximum` (or infinite): for a clearer error.
    public static func isTooLong(_ text: String) -> Bool {
        guard let value = unbounded(text) else { return false }
        return !value.isFinite || value > maximum
    }

    private static func unbounded(_ text: String) -> Double? {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        // A bare number is seconds, written in decimal (`300`, `1.5`, `1e3`); not hex (`0x10`), which Double
        // would take too. `inf` and `nan` read as numbers so they are refused as too long, not as garbage.
        if text.allSatisfy({ $0.isASCII && ($0.isNumber || ".eE+-".contains($0)) })
            || ["inf", "infinity", "nan"].contains(
                text.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "+-")))
        {
            guard let plain = Double(text), !plain.isNaN, plain >= 0 else { return nil }
            return plain
        }
        var total = 0.0
        var number = ""
        var unit = ""
        var parsedAny = false
        var previousScale = Double.infinity
        func flush() -> Bool {
            guard let value = Double(number), value >= 0 else { return false }
            let scale: Double
            switch unit {
            case "ms": scale = 0.001
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86400
            default: return false
            }
            // Units from the largest down, each once: `1h30m`, not `5s1h` or `1m1m`.
            guard scale < previousScale else { return false }
            previousScale = scale
            total += value * scale
            number = ""
            unit = ""
            parsedAny = true
            return true
        }
        for character in text {
            if character.isNumber || character == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(character)
            } else if character.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard flush(), parsedAny else { return nil }
        return total
    }

    /// `seconds` written back the short way (`1h30m`, `45s`, `250ms`).
    public static func format(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "\(seconds)s" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        var rest = Int(min(seconds, maximum * 100).rounded())
        var parts = ""
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            parts += "\(rest / size)\(unit)"
            rest %= size
        }
        return parts.isEmpty ? "0s" : parts
    }
}
