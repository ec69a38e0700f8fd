/** Errors a transfer already reported as an `error` status event (with `--json`: on stdout), so the CLI does not report them twice. */
export const reportedInStream = new WeakSet<object>();
