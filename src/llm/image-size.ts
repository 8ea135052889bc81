/** Width and height in pixels. */
export type Size = { width: number; height: number };

// A JPEG's size sits in its frame header, after EXIF and colour profiles that can run to a few
// hundred KB; looking further than this costs memory for no realistic image.
const MAX_HEADER_BYTES = 512 * 1024;

/**
 * Reads an image's size from the header of a `data:` URL (PNG, GIF, JPEG, WebP) without decoding
 * the image; undefined for remote URLs, other formats and damaged headers. Bounded: it decodes at
 * most MAX_HEADER_BYTES of base64.
 */
export function imageSizeOfDataUrl(url: string): Size | undefined {
  const comma = url.indexOf(",");
  if (!url.startsWith("data:") || comma < 0 || !url.slice(0, comma).endsWith(";base64")) return undefined;
  const b64 = url.slice(comma + 1, comma + 1 + Math.ceil((MAX_HEADER_BYTES * 4) / 3 / 4) * 4);
  const bytes = Buffer.from(b64, "base64");
  return pngSize(bytes) ?? gifSize(bytes) ?? webpSize(bytes) ?? jpegSize(bytes);
}

const valid = (width: number, height: number): Size | undefined =>
  width > 0 && height > 0 ? { width, height } : undefined;

function pngSize(b: Buffer): Size | undefined {
  if (b.length < 24 || b.readUInt32BE(0) !== 0x89504e47 || b.toString("ascii", 12, 16) !== "IHDR") return;
  return valid(b.readUInt32BE(16), b.readUInt32BE(20));
}

function gifSize(b: Buffer): Size | undefined {
  if (b.length < 10 || b.toString("ascii", 0, 4) !== "GIF8") return;
  return valid(b.readUInt16LE(6), b.readUInt16LE(8));
}

function webpSize(b: Buffer): Size | undefined {
  if (b.length < 30 || b.toString("ascii", 0, 4) !== "RIFF" || b.toString("ascii", 8, 12) !== "WEBP") return;
  const chunk = b.toString("ascii", 12, 16);
  if (chunk === "VP8X") return valid(1 + b.readUIntLE(24, 3), 1 + b.readUIntLE(27, 3));
  if (chunk === "VP8 ") return valid(b.readUInt16LE(26) & 0x3fff, b.readUInt16LE(28) & 0x3fff);
  if (chunk === "VP8L") {
    const bits = b.readUInt32LE(21);
    return valid(1 + (bits & 0x3fff), 1 + ((bits >> 14) & 0x3fff));
  }
}

function jpegSize(b: Buffer): Size | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return;
  let at = 2;
  while (at + 9 < b.length) {
    if (b[at] !== 0xff) return;
    const marker = b[at + 1]!;
    // SOF0–SOF15 carry the frame size; C4 (huffman), C8 (reserved) and CC (arithmetic) do not.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return valid(b.readUInt16BE(at + 7), b.readUInt16BE(at + 5));
    at += 2 + b.readUInt16BE(at + 2);
  }
}
