import { namedError } from '../named-error.js'

/** A `--web` value that is not a host:port the web interface can serve on. */
export class InvalidWebAddressError extends namedError('InvalidWebAddressError') {}
