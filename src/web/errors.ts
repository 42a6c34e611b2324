/** A `--web` value that is not a host:port the web interface can serve on. */
export class InvalidWebAddressError extends Error {
  static override readonly name = 'InvalidWebAddressError'
  override readonly name = 'InvalidWebAddressError'
}
