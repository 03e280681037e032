"""Images from users: bytes (an upload) or a URL, opened into an RGB PIL image with a note of what was done.

Pure functions, used by the widget panels and usable in any notebook:

    image, note = open_image(data)          # bytes of a PNG/JPEG/…
    image, note = fetch_image("https://…")  # http(s) only, with a timeout and a size cap
    image, note = to_rgb(image)             # a PIL image of any mode, as the tasks convert theirs
"""

import io
import urllib.error
import urllib.request
from urllib.parse import urlparse

import PIL.Image
import PIL.ImageOps

from .errors import ImageError, wrong_type

MAX_BYTES = 20 * 2**20  # the largest download or upload accepted
MAX_PIXELS = 40_000_000  # ~ 6300 x 6300; larger pictures are refused before they are decoded
TIMEOUT_S = 10.0
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # more than 8 bits per pixel


def open_image(data: bytes, name: str = "the image") -> tuple[PIL.Image.Image, str | None]:
    """Decode image bytes; apply EXIF rotation; convert to RGB (transparency onto white)."""
    if not data:
        raise ImageError(f"{name} is empty")
    try:
        image = PIL.Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ImageError(f"{name} is {image.width} x {image.height} pixels: more than the {MAX_PIXELS // 10**6} megapixels accepted")
        image.load()
    except PIL.Image.DecompressionBombError as error:
        raise ImageError(f"{name} is too large to open safely ({error})") from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageError(f"{name} is not an image PIL can read ({error})") from None
    notes = []
    if getattr(image, "n_frames", 1) > 1:
        notes.append(f"used the first of {image.n_frames} frames")
    rotated = PIL.ImageOps.exif_transpose(image)
    if rotated is not image and rotated.size != image.size:
        notes.append("rotated as its EXIF data says")
    image, note = to_rgb(rotated, name)
    return image, "; ".join(notes + ([note] if note else [])) or None


def to_rgb(image: PIL.Image.Image, name: str = "the image") -> tuple[PIL.Image.Image, str | None]:
    """An RGB copy of any PIL image, with a note of what was done: transparency onto white, 16-bit,
    32-bit integer and float values scaled to 8 bits, other modes converted. The one conversion path
    for uploads, URLs and pictures passed straight to the API; an empty image is refused."""
    if not isinstance(image, PIL.Image.Image):
        raise wrong_type(name, "a PIL image", image)
    if image.width < 1 or image.height < 1:
        raise ImageError(f"{name} is {image.width} x {image.height} pixels: it has no pixels to use")
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"{name} is {image.width} x {image.height} pixels: more than the {MAX_PIXELS // 10**6} megapixels accepted")
    if image.mode == "RGB":
        return image, None
    if image.mode in ("RGBA", "LA", "PA", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = PIL.Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat, f"put the {image.mode} image's transparent parts on white"
    if image.mode in WIDE_MODES:
        import numpy as np  # only for 16-bit and float pictures: a thin client's page stays numpy-free

        values = np.asarray(image, dtype=np.float64)
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        low = min(0.0, float(values.min()))
        top = float(values.max()) - low if values.size and values.max() > low else 1.0
        grey = ((values - low) / top * 255).round().clip(0, 255).astype(np.uint8)
        shown = f"{low:g}..{low + top:g}"
        return PIL.Image.fromarray(grey).convert("RGB"), f"scaled the {image.mode} image's values {shown} to 8-bit grey"
    try:
        return image.convert("RGB"), f"converted {image.mode} to RGB"
    except (ValueError, OSError) as error:
        raise ImageError(f"{name} has the mode {image.mode!r}, which cannot be converted to RGB ({error})") from None


def _why(error: Exception, timeout: float) -> str:
    """What went wrong with a download, in words; never empty (a bare timeout's message is)."""
    if isinstance(error, urllib.error.HTTPError):  # the server answered, with an error status
        return f"the server answered HTTP {error.code} {error.reason}"
    reason = getattr(error, "reason", error)  # URLError wraps the socket's error
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    return str(reason).strip() or type(reason).__name__


def fetch_image(url: str, timeout: float = TIMEOUT_S, max_bytes: int = MAX_BYTES) -> tuple[PIL.Image.Image, str | None]:
    """Download an image over http(s), refusing other schemes, slow servers and oversized answers."""
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise ImageError(f"only http:// and https:// URLs can be loaded, not {repr(scheme) if scheme else 'a bare path'}")
    request = urllib.request.Request(url, headers={"User-Agent": "kandinsky-lab"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
    except (OSError, ValueError) as error:  # HTTP errors, refused connections, timeouts, malformed URLs
        raise ImageError(f"could not download {url}: {_why(error, timeout)}") from None
    if len(data) > max_bytes:
        raise ImageError(f"{url} is larger than {max_bytes // 2**20} MB")
    return open_image(data, name=url)
