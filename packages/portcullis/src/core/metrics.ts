/** Prometheus metrics of the gateway, one registry per gateway instance (tests run several). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly sessionsActive = new Gauge({ name: "portcullis_sessions_active", help: "Live sessions", labelNames: ["protocol", "connection"], registers: [this.registry] });
  readonly sessionsTotal = new Counter({ name: "portcullis_sessions_total", help: "Sessions opened", labelNames: ["protocol", "connection"], registers: [this.registry] });
  readonly authFailures = new Counter({ name: "portcullis_auth_failures_total", help: "Refused logins by reason", labelNames: ["protocol", "reason"], registers: [this.registry] });
  readonly bytes = new Counter({ name: "portcullis_bytes_total", help: "Bytes relayed", labelNames: ["protocol", "direction"], registers: [this.registry] });
  readonly decisions = new Counter({ name: "portcullis_decisions_total", help: "Operations refused or held by policy, by rule", labelNames: ["action", "rule"], registers: [this.registry] });
  readonly protocolErrors = new Counter({ name: "portcullis_protocol_errors_total", help: "Sessions ended by malformed input", labelNames: ["protocol"], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "portcullis_process_" });
  }
}
