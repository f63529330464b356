#!/usr/bin/env bash
# Installs a JDK and Maven from the distribution's signed archive (Ubuntu's OpenJDK and Maven
# packages), and Gradle (the official distribution, checked against the SHA-256 Gradle publishes
# beside it) on /usr/local/bin. Runs as root during an image build; versions come from the
# Dockerfile's build arguments.
set -euo pipefail

: "${JDK_MAJOR:?JDK_MAJOR is required}"
: "${GRADLE_VERSION:?GRADLE_VERSION is required}"

apt-get update
apt-get install -y --no-install-recommends "openjdk-${JDK_MAJOR}-jdk-headless" maven unzip
rm -rf /var/lib/apt/lists/*

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

archive="gradle-${GRADLE_VERSION}-bin.zip"
curl -fsSL --retry 3 -o "$work/$archive" "https://services.gradle.org/distributions/$archive"
curl -fsSL --retry 3 -o "$work/$archive.sha256" "https://services.gradle.org/distributions/$archive.sha256"
sha256="$(tr -d '[:space:]' <"$work/$archive.sha256")"
if [[ ! "$sha256" =~ ^[0-9a-f]{64}$ ]]; then
  echo "install-java: no checksum published for $archive" >&2
  exit 1
fi
printf '%s  %s\n' "$sha256" "$work/$archive" | sha256sum --check --strict -
rm -rf "/opt/gradle-${GRADLE_VERSION}"
unzip -q "$work/$archive" -d /opt
ln -sf "/opt/gradle-${GRADLE_VERSION}/bin/gradle" /usr/local/bin/gradle

java -version
mvn --version
gradle --version
