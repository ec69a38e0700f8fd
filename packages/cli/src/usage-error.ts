import { InvalidArgumentError, type FerryErrorOptions } from "@ferry/core";

/**
 * A command-line mistake (unknown option, missing argument). Exits with code 2 like every
 * `InvalidArgument`; `command` names the subcommand whose help the message points to.
 */
export class UsageError extends InvalidArgumentError {
  readonly command: string | undefined;

  constructor(message: string, command?: string, options?: FerryErrorOptions) {
    super(message, options);
    this.command = command;
  }
}
