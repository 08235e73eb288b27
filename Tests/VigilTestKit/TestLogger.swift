import Logging

extension Logger {
    /// A logger that only reports errors: tests read outcomes, not log lines.
    public static var quiet: Logger {
        var l = Logger(label: "vigil.tests")
        l.logLevel = .error
        return l
    }

    /// A logger that reports nothing: the mock cluster's clients log every refused connection
    /// after a test has taken its broker away.
    public static var silent: Logger {
        var l = Logger(label: "vigil.tests")
        l.logLevel = .critical
        return l
    }
}
