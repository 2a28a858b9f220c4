/**
 * Searching the model's class list for the feedback picker. A class matches
 * by its name or any synonym (ImageNet calls a mop "swab"), by WordNet id or
 * by index. Pure functions, unit-tested in frontend/tests.
 */

/** Rendering all 1000 options on every keystroke is wasteful; typing narrows the list. */
export const MAX_OPTIONS = 60;

/**
 * How well one name matches: 0 exact, 1 prefix, 2 word start, 3 substring, -1 none.
 * @param {string} name lower-case
 * @param {string} query lower-case, trimmed, non-empty
 */
function nameRank(name, query) {
  if (name === query) return 0;
  if (name.startsWith(query)) return 1;
  if (name.includes(` ${query}`) || name.includes(`-${query}`) || name.includes(`(${query}`)) return 2;
  return name.includes(query) ? 3 : -1;
}

/**
 * Ranks a label for a query; lower is better, null means no match. A match on
 * the label's own name beats the same kind of match on a synonym, so "cup"
 * lists "cup" before "measuring cup", and "mop" finds "swab" (via "mop").
 * @param {{index:number, wnid:string, name:string, synonyms?:string[]}} label
 * @param {string} query lower-case, trimmed
 * @returns {{score:number, synonym:string|null}|null}
 */
export function rankLabel(label, query) {
  if (!query) return { score: 0, synonym: null };
  const own = nameRank(label.name.toLowerCase(), query);
  let best = own < 0 ? null : { score: own * 2, synonym: null };
  for (const synonym of label.synonyms || []) {
    if (synonym.toLowerCase() === label.name.toLowerCase()) continue;
    const rank = nameRank(synonym.toLowerCase(), query);
    if (rank >= 0 && (!best || rank * 2 + 1 < best.score)) best = { score: rank * 2 + 1, synonym };
  }
  if (!best && (label.wnid === query || String(label.index) === query)) best = { score: 8, synonym: null };
  return best;
}

/**
 * Filters and orders labels for a query.
 * @param {Array<{index:number, wnid:string, name:string, synonyms?:string[]}>} labels
 * @param {string} rawQuery
 * @returns {{matches: Array<{label:object, synonym:string|null}>, total: number}}
 */
export function filterLabels(labels, rawQuery) {
  const query = rawQuery.trim().toLowerCase();
  const scored = [];
  for (const label of labels) {
    const rank = rankLabel(label, query);
    if (rank) scored.push({ label, ...rank });
  }
  scored.sort((a, b) => a.score - b.score || a.label.name.localeCompare(b.label.name));
  return {
    matches: scored.slice(0, MAX_OPTIONS).map(({ label, synonym }) => ({ label, synonym })),
    total: scored.length,
  };
}

/** Names shared by several classes; they need the WordNet id to be told apart. */
export function duplicateNames(labels) {
  const seen = new Map();
  for (const label of labels) seen.set(label.name, (seen.get(label.name) || 0) + 1);
  return new Set([...seen].filter(([, count]) => count > 1).map(([name]) => name));
}
