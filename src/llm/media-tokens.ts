import { imageSizeOfDataUrl, type Size } from "./image-size.js";

// OpenAI bills gpt-4o-mini's images (any snapshot or variant) at ~33× the tokens, its tokens being
// ~33× cheaper; other tile-priced models at 85 per image plus 170 per 512-px tile.
const MINI_RATES = { base: 2833, tile: 5667 };
const DEFAULT_RATES = { base: 85, tile: 170 };
/**
 * An image whose size the request does not show (a remote URL) is billed as the largest image
 * `high`/`auto` detail can yield: after scaling it fits 2048×768, i.e. 4 × 2 = 8 tiles.
 */
export const UNKNOWN_IMAGE_SIZE: Size = { width: 2048, height: 768 };

/**
 * Prompt tokens of one `image_url` part by OpenAI's tile rule: `low` detail is the base alone;
 * `high` and `auto` scale the image to fit 2048×2048, then its shorter side down to 768, and add a
 * tile charge per 512-px tile.
 */
export function imageTokens(part: { image_url?: unknown }, model = ""): number {
  const image = (part.image_url ?? {}) as { url?: unknown; detail?: unknown };
  const rates = model.startsWith("gpt-4o-mini") ? MINI_RATES : DEFAULT_RATES;
  if (image.detail === "low") return rates.base;
  const size = (typeof image.url === "string" && imageSizeOfDataUrl(image.url)) || UNKNOWN_IMAGE_SIZE;
  return rates.base + rates.tile * tiles(size);
}

function tiles({ width, height }: Size): number {
  const fit = Math.min(1, 2048 / Math.max(width, height));
  let w = width * fit;
  let h = height * fit;
  const shorten = Math.min(1, 768 / Math.min(w, h));
  w *= shorten;
  h *= shorten;
  return Math.ceil(w / 512) * Math.ceil(h / 512);
}

// gpt-4o's audio input runs at about 10 tokens a second.
const AUDIO_TOKENS_PER_SECOND = 10;
// Compressed audio without a readable header is taken at 32 kbit/s, the low end of speech MP3s:
// lower bitrates are rare, and higher ones hold less time per byte, so this errs high.
const ASSUMED_BYTES_PER_SECOND = 4_000;

/**
 * Prompt tokens of one `input_audio` part from its duration: a WAV header gives it exactly, any other
 * format is timed from its size (the base64 length) at ASSUMED_BYTES_PER_SECOND.
 */
export function audioTokens(part: { input_audio?: unknown }): number {
  const audio = (part.input_audio ?? {}) as { data?: unknown };
  if (typeof audio.data !== "string" || audio.data.length === 0) return 0;
  let chars = audio.data.length;
  while (chars > 0 && audio.data[chars - 1] === "=") chars--;
  const bytes = Math.floor((chars * 3) / 4);
  const header = Buffer.from(audio.data.slice(0, 64), "base64");
  const wav =
    header.length >= 44 &&
    header.toString("ascii", 0, 4) === "RIFF" &&
    header.toString("ascii", 8, 12) === "WAVE";
  const byteRate = wav ? header.readUInt32LE(28) : 0;
  const seconds = byteRate > 0 ? (bytes - 44) / byteRate : bytes / ASSUMED_BYTES_PER_SECOND;
  return Math.ceil(Math.max(0, seconds) * AUDIO_TOKENS_PER_SECOND);
}
