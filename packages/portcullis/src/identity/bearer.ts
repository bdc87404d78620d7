/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1); undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];
}
