/** Reading the gateway's Prometheus metrics in tests. */

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
