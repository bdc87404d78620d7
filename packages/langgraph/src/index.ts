/**
 * @portcullis/langgraph: route a LangGraph graph's database and HTTP calls through Portcullis.
 *
 *   const tokens = clientCredentials({ tokenUrl, clientId, clientSecret, resource: "portcullis" });
 *   const db = portcullisPool({ host, port: 15432, connection: "customers", tokens });
 *   const billing = portcullisFetch({ gateway: "http://gw:18080", connection: "billing", tokens });
 *   const lookup = withApproval((id) => db.query("select ...", [id]), { gateway, tokens });
 */
export { clientCredentials, devIssuer, staticToken, tokenExchange, type TokenSource } from "./tokens.js";
export { currentRunContext, type RunContext } from "./context.js";
export { portcullisPool, PortcullisPool, type PortcullisPoolOptions } from "./pool.js";
export { portcullisFetch, type PortcullisFetch, type PortcullisFetchOptions } from "./fetch.js";
export { withApproval, type ApprovalInterrupt, type WithApprovalOptions } from "./approval.js";
export { portcullisSqlTools, type SqlToolsOptions } from "./tools.js";
export {
  PortcullisError, PortcullisDeniedError, PortcullisApprovalRequiredError, PortcullisApprovalDeniedError,
  PortcullisRevokedError, PortcullisBudgetExceededError, PortcullisUnavailableError, fromPgError, fromHttpRefusal,
} from "./errors.js";
