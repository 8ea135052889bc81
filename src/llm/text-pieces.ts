/** Longest piece handed to the tokenizer at once: BPE cost grows faster than linearly per piece. */
export const MAX_PIECE_CHARS = 256;
// A whitespace cut is searched for in the piece's second half, so pieces stay long enough for the
// tokenizer's merges to see whole words.
const MIN_PIECE_CHARS = MAX_PIECE_CHARS / 2;

/**
 * Cuts text into pieces of at most MAX_PIECE_CHARS, so tokenizing it costs linear time in total.
 *
 * A cut is made before a space that follows a non-space character where one exists: the tokenizer's
 * own pre-tokenizer (o200k / cl100k regexes) always starts a new piece there, so such cuts change
 * no count. A run without such a space (a 300,000-character "word", base64, CJK) is cut every
 * MAX_PIECE_CHARS characters, never inside a surrogate pair; `hardCuts` counts those cuts, across
 * which a merge may be lost — callers add one token per hard cut so the sum stays an upper bound.
 */
export function* textPieces(text: string): Generator<{ piece: string; hardCut: boolean }> {
  let start = 0;
  while (text.length - start > MAX_PIECE_CHARS) {
    let cut = text.lastIndexOf(" ", start + MAX_PIECE_CHARS);
    while (cut > start + MIN_PIECE_CHARS && /\s/.test(text[cut - 1]!)) cut = text.lastIndexOf(" ", cut - 1);
    const soft = cut > start + MIN_PIECE_CHARS;
    if (!soft) {
      cut = start + MAX_PIECE_CHARS;
      const code = text.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut -= 1; // keep a surrogate pair together
    }
    yield { piece: text.slice(start, cut), hardCut: !soft };
    start = cut;
  }
  if (start < text.length) yield { piece: text.slice(start), hardCut: false };
}
