#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the end-to-end tests and benchmarks (headless; no
# browser build is downloaded from anywhere else: Playwright drives /usr/bin/chromium directly).
# Prints the browser's path as the last line on stdout.
set -euo pipefail
exec "$(dirname "$0")/apt-install.sh" browser /usr/bin/chromium /usr/bin/chromedriver -- chromium chromium-driver
