/**
 * The programmatic surface of the `portcullis` package: run a gateway in-process (tests, demos,
 * embedding), load its configuration, and mint dev-issuer tokens. The CLI is `bin/portcullis.js`.
 */
export { startGateway, type Gateway, type GatewayOptions } from "./server.js";
export { loadConfig, parseConfig, ConfigError, type LoadedConfig } from "./config/load.js";
export { DevIssuer, DEV_ISSUER_ISS, DEV_ISSUER_AUDIENCE, type IssueOptions } from "./identity/dev-issuer.js";
export { LocalPostgres } from "./quickstart/local-postgres.js";
export { sampleSchemaSql } from "./quickstart/sample-data.js";
export { verifyAudit } from "./audit/verify.js";
export { publicKeyFromDataDir } from "./audit/signing.js";
export { loadRecording, renderFrames } from "./recording/replay.js";
export { PortcullisError, isPortcullisError, type ErrorCode } from "./errors.js";
