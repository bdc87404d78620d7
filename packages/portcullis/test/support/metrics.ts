/** Reading the gateway's Prometheus metrics in tests. */

/** The scrape token test gateways are configured with (`gateway.metrics_token`). */
export const METRICS_TOKEN = "test-scrape-token-0123456789";

/** The gateway's metrics text, scraped with the test scrape token. */
export async function scrape(httpPort: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  if (res.status !== 200) throw new Error(`metrics: HTTP ${res.status}`);
  return res.text();
}

/** The value of one sample in Prometheus text: the first line of `name` carrying every given label (0 when none). */
export function sampleValue(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.indexOf("}"));
    if (want.every((w) => labelText.split(",").includes(w))) return Number(line.slice(line.indexOf("}") + 1));
  }
  return 0;
}
