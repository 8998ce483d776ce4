"""Remake docs/page/before.png and after.png: the `deblur serve` page at 1300 px wide, with a
photo added (before) and after its preset previews and a full-size restore (after).

    python docs/page/make_screenshots.py                 # the bundled default model
    python docs/page/make_screenshots.py --photo my.jpg --weights tiny.safetensors

Needs the serve extra, selenium, and Chromium with its chromedriver (Debian: apt-get
install chromium chromium-driver). The photo is, by default, the blurry panel of
docs/example_result.png (300 x 300 px, a real photo): no download, nothing outside the
repository. It starts its own server on a free port and stops it at the end.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WIDTH = 1300


def default_photo(folder: Path) -> Path:
    """The "blurry" panel of docs/example_result.png: columns 0-299, below its 25 px label."""
    from PIL import Image

    path = folder / "street.png"
    Image.open(REPO / "docs" / "example_result.png").convert("RGB").crop((0, 25, 300, 325)).save(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, extra: list[str], folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "deblurkit", "serve", "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder)
    banner = proc.stdout.readline()
    if "open http" not in banner:
        proc.kill()
        raise SystemExit(f"deblur serve did not start: {banner}{proc.stderr.read()}")
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("deblur serve did not answer")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chrome or not driver:
        raise SystemExit("needs Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--force-device-scale-factor=1", f"--window-size={WIDTH},900"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def shoot(b, path: Path, min_height: int = 900, max_height: int = 2400) -> None:
    """The whole page (up to max_height px tall), WIDTH px wide: the window's inside is made
    as large as the page, then shot."""
    b.execute_script("window.scrollTo(0, 0)")
    for _ in range(2):  # the page can grow with the window: measure again once
        height = max(min_height, min(max_height, b.execute_script("return document.documentElement.scrollHeight")))
        w, h = b.execute_script("return [window.innerWidth, window.innerHeight]")
        size = b.get_window_size()
        b.set_window_size(size["width"] + WIDTH - w, size["height"] + height - h)
        time.sleep(0.5)
    b.save_screenshot(str(path))
    w, h = b.execute_script("return [window.innerWidth, window.innerHeight]")
    print(f"wrote {path}: {w} x {h} px")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", type=Path, help="the photo to restore (default: the blurry panel of docs/example_result.png)")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for before.png and after.png (default: docs/page)")
    ap.add_argument("--weights", help="a checkpoint for deblur serve (default: the bundled default model)")
    ap.add_argument("--model", help="a model name from weights.toml")
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for the restores")
    args = ap.parse_args()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    extra = (["--weights", args.weights] if args.weights else []) + (["--model", args.model] if args.model else [])
    with tempfile.TemporaryDirectory(prefix="deblur-shots-") as tmp:
        folder = Path(tmp)
        photo = (args.photo or default_photo(folder)).resolve()
        port = free_port()
        server = start_server(port, extra, folder)
        b = browser()
        try:
            b.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(b, args.timeout)
            wait.until(lambda d: "model" in d.find_element(By.ID, "model").text)
            b.find_element(By.ID, "files").send_keys(str(photo))
            wait.until(lambda d: d.execute_script(
                "const i = document.querySelector('.panel:not([hidden]) .thumb'); return i && i.complete && i.naturalWidth > 0"))
            args.out.mkdir(parents=True, exist_ok=True)
            shoot(b, args.out / "before.png", min_height=600)

            b.set_window_size(WIDTH, 900)
            panel = b.find_element(By.CSS_SELECTOR, ".panel:not([hidden])")
            panel.find_element(By.CSS_SELECTOR, "button.preview").click()
            loaded = "return [...arguments[0].querySelectorAll('.pv img')].filter(i => i.complete && i.naturalWidth).length"
            wait.until(lambda d: d.execute_script(loaded, panel) == 5)  # the input and the four presets
            panel.find_element(By.CSS_SELECTOR, "button.full").click()
            wait.until(lambda d: "full size" in panel.find_element(By.CSS_SELECTOR, ".viewer-title").text
                       and d.execute_script("const i = arguments[0].querySelector('img.after'); "
                                            "return i.complete && i.naturalWidth > 0", panel))
            shoot(b, args.out / "after.png")
        finally:
            b.quit()
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
