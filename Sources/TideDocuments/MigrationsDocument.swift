public import TideEngine

/// What `tide migrations --json` prints (and the service answers): every migration in every database, with its
/// phase, owner and what Tide does next about it.
public typealias MigrationsDocument = [MigrationReportEntry]
