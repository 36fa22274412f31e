/// Every form of URL a credential has been found riding in — user information (literal, percent-encoded, with
/// '@' and spaces in it), scp-style addresses, token query parameters, fragments — each with the secret in it.
/// One table for every place Tide shows a URL: remote repositories (`--repo`), databases, HTTP executors and
/// metrics servers; whatever Tide prints or stores of any of them must not hold the secret.
public enum SecretURLs {
    /// The secret each URL carries.
    public static let secret = "hunter2"

    /// Remote repository addresses (http, ssh, scp-style, file).
    public static let remotes = [
        "https://alice:hunter2@example.com/config.git",
        "https://hunter2@example.com/config.git",
        "https://alice%3Ahunter2@example.com/config.git",
        "https://alice%3ahunter2@example.com/config.git",
        "https://u:hunter2@CR ET@example.com/config.git",
        "https://u:SE@hunter2 X@example.com/config.git",
        "ssh://git:hunter2@example.com/config.git",
        "git:hunter2@example.com:org/config.git",
        "git%3Ahunter2@example.com:org/config.git",
        "https://example.com/config.git?private_token=hunter2",
        "https://example.com/config.git?access_token=hunter2",
        "https://example.com/config.git?token=hunter2",
        "https://example.com/config.git?x=1&Token=hunter2",
        "https://example.com/config.git#hunter2",
        "file:///srv/config.git#hunter2",
        "file:///srv/config.git?token=hunter2",
        "https://example.com/config.git?private_token=abc@hunter2",
        "https://example.com/config.git#x@hunter2",
        "git://hunter2@example.com/config.git",
    ]

    /// Database and HTTP URLs as manifests write them.
    public static let manifestURLs = [
        "postgres://tide:hunter2@db:5432/orders",
        "postgres://tide%3Ahunter2@db:5432/orders",
        "postgres://tide@db/orders?password=hunter2",
        "postgres://tide@db/orders#hunter2",
        "postgres:tide:hunter2@db/orders",
        "https://ci:hunter2@deploy.internal/hook",
        "https://hunter2@deploy.internal/hook",
        "https://deploy.internal/hook?token=hunter2",
        "https://deploy.internal/hook?private_token=hunter2",
        "http://prometheus.internal:9090/?access_token=hunter2",
        "http://prometheus.internal:9090/#hunter2",
    ]

    public static var all: [String] { remotes + manifestURLs }
}
