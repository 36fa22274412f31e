import Foundation

extension NodeReader {
    mutating func environment(_ spec: Field, name: String, at: SourceLocation) -> EnvironmentManifest? {
        var environment = EnvironmentManifest(name: name, location: at)
        if case .scalar = spec.node, spec.node.tagName == .null { return environment }
        guard
            let f = fields(
                spec, allowed: ["production", "requires", "bake", "approval", "promotion", "windows", "freezes"])
        else { return nil }
        let before = diagnostics.count
        if let value = f["production"].flatMap({ bool($0) }) { environment.production = value }
        if let field = f["requires"], let items = stringList(field) {
            for (text, item) in items {
                let at = field.at(item)
                if !Naming.isValidName(text) {
                    error(at, "'\(text)' is not a valid environment name")
                } else if text == name {
                    error(at, "an environment cannot require itself")
                } else if environment.requires.contains(text) {
                    error(at, "'\(text)' is listed twice")
                } else {
                    environment.requires.append(text)
                    environment.requiresLocations.append(location(item))
                }
            }
        }
        if let seconds = f["bake"].flatMap({ duration($0) }) { environment.bake = seconds }
        if let mode = f["approval"].flatMap({ oneOf($0, EnvironmentManifest.Mode.self) }) {
            environment.approval = mode
        }
        if let mode = f["promotion"].flatMap({ oneOf($0, EnvironmentManifest.Mode.self) }) {
            environment.promotion = mode
        }
        if let field = f["windows"] {
            if let items = field.items {
                environment.windows = items.compactMap { window($0) }
            } else {
                error(field, "expected a list, found \(describe(field.node))")
            }
        }
        if let field = f["freezes"] {
            if let items = field.items {
                environment.freezes = items.compactMap { freeze($0) }
            } else {
                error(field, "expected a list, found \(describe(field.node))")
            }
        }
        return diagnostics.count == before ? environment : nil
    }

    static let weekdays = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    /// `timezone`: an IANA name; UTC when not given.
    mutating func timeZone(_ field: Field?) -> TimeZone? {
        guard let field else { return TimeZone(identifier: "UTC") }
        guard let text = string(field) else { return nil }
        guard let zone = TimeZone(identifier: text) else {
            error(field, "'\(text)' is not an IANA time zone (like Europe/Berlin or UTC)")
            return nil
        }
        return zone
    }

    mutating func window(_ field: Field) -> EnvironmentManifest.Window? {
        guard
            let f = fields(
                field, allowed: ["days", "start", "end", "timezone"], required: ["days", "start", "end"])
        else { return nil }
        let before = diagnostics.count
        var weekdays: Set<Int> = []
        if let days = f["days"], let items = stringList(days) {
            for (text, item) in items {
                if let day = Self.weekdays[text.lowercased()] {
                    weekdays.insert(day)
                } else {
                    error(days.at(item), "'\(text)' is not a day (mon, tue, wed, thu, fri, sat, sun)")
                }
            }
            if items.isEmpty { error(days, "list at least one day") }
        }
        let start = f["start"].flatMap { clock($0) }
        let end = f["end"].flatMap { clock($0) }
        let zone = timeZone(f["timezone"])
        guard diagnostics.count == before, let start, let end, let zone else { return nil }
        if start == end { error(field, "start and end are the same time; the window would be empty") }
        return EnvironmentManifest.Window(
            weekdays: weekdays, start: start, end: end, timeZone: zone, location: location(field.node))
    }

    /// "HH:MM" as minutes after midnight ("24:00" is the end of the day).
    mutating func clock(_ field: Field) -> Int? {
        guard let text = string(field) else { return nil }
        let parts = text.split(separator: ":")
        if parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int(parts[0]),
            let minutes = Int(parts[1]), (0...59).contains(minutes),
            (0...23).contains(hours) || (hours == 24 && minutes == 0)
        {
            return hours * 60 + minutes
        }
        error(field, "'\(text)' is not a time of day (write it as HH:MM, like 09:00)")
        return nil
    }

    mutating func freeze(_ field: Field) -> EnvironmentManifest.Freeze? {
        guard let f = fields(field, allowed: ["from", "to", "reason", "timezone"], required: ["from", "to"]) else {
            return nil
        }
        let zone = timeZone(f["timezone"])
        var calendar = Calendar(identifier: .gregorian)
        if let zone { calendar.timeZone = zone }
        func day(_ name: String) -> Date? {
            guard let dayField = f[name], let text = string(dayField) else { return nil }
            let parts = text.split(separator: "-").compactMap { Int($0) }
            // The calendar rolls 2026-13-04 over into 2027: every component must come back as written.
            if parts.count == 3, text.count == 10, (1970...9999).contains(parts[0]),
                let date = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])),
                calendar.dateComponents([.year, .month, .day], from: date)
                    == DateComponents(year: parts[0], month: parts[1], day: parts[2])
            {
                return date
            }
            error(dayField, "'\(text)' is not a date (write it as YYYY-MM-DD)")
            return nil
        }
        let reason = f["reason"].flatMap { string($0) }
        guard let from = day("from"), let to = day("to"), zone != nil else { return nil }
        guard from <= to, let until = calendar.date(byAdding: .day, value: 1, to: to) else {
            error(field, "'from' is after 'to'")
            return nil
        }
        return EnvironmentManifest.Freeze(from: from, until: until, reason: reason, location: location(field.node))
    }
}
