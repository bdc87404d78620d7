/**
 * Masking (SPEC §5), the pure part: detectors, strategies, and maskers for a single value, a text
 * and a JSON document. No I/O, no logging, deterministic for a given key.
 */
export { applyStrategy, hashValue, isStrategy, partial, redact, STRATEGIES, type Strategy } from "./strategies.js";
export { DETECTORS, KNOWN_DETECTORS, getDetector, type Detector } from "./detectors/index.js";
export { compileTextMasker, resolveDetectors, type TextMasker, type TextMatch } from "./text-masker.js";
export { compileJsonMasker, type JsonMasker, type JsonMaskerOptions } from "./json-masker.js";
