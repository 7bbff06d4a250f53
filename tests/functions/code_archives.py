"""Building ZIP archives for tests: regular files, directories and symbolic links, as real tools write them."""

import stat
import zipfile
from io import BytesIO


def zip_of(files: dict[str, str | bytes], *, links: dict[str, str] | None = None, dirs: tuple[str, ...] = ()) -> bytes:
    """A ZIP holding ``files`` (path -> content), symbolic ``links`` (path -> target) and empty ``dirs``."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for directory in dirs:
            archive.writestr(zipfile.ZipInfo(directory.rstrip("/") + "/"), "")
        for path, content in files.items():
            info = zipfile.ZipInfo(path)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
        for path, target in (links or {}).items():
            info = zipfile.ZipInfo(path)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


NODE_CODE = zip_of({"index.mjs": "export const handler = async (event) => ({ got: event });\n"})
PYTHON_CODE = zip_of({"app.py": "def handler(event, context):\n    return {'got': event}\n"})
