#!/bin/sh
# azd postprovision hook: register the Microsoft.ContainerInstance resource provider, then make sure
# Key Vault holds the secrets the Function App reads through Key
# Vault references (DEV8_JWT_SECRET, DEV8_SECRETS_KEY), generating only the ones that are missing,
# then restart the app so the references resolve. An existing secret is never replaced: a new
# sealing key would make every stored environment secret unreadable.
# Never prints a secret value. Needs az (signed in as the azd principal) and openssl.
set -eu

vault="${AZURE_KEY_VAULT_NAME:?AZURE_KEY_VAULT_NAME is not set: run through azd, or export the azd outputs}"
app="${AZURE_FUNCTION_APP_NAME:?AZURE_FUNCTION_APP_NAME is not set}"
group="${AZURE_RESOURCE_GROUP:?AZURE_RESOURCE_GROUP is not set}"
jwt_name="${AZURE_KEY_VAULT_JWT_SECRET_NAME:-dev8-jwt-secret}"
key_name="${AZURE_KEY_VAULT_SECRETS_KEY_NAME:-dev8-secrets-key}"
attempts="${HOOK_ATTEMPTS:-18}"
retry_seconds="${HOOK_RETRY_SECONDS:-10}"

log() {
  printf '[postprovision] %s\n' "$*" >&2
}

# Names of the secrets in the vault, one a line. Role assignments made by the deployment can take a
# few minutes to apply, so a refused listing is retried; a listing that works is the only basis for
# deciding that a secret is missing (a refused read must never look like "absent").
existing=""
try=1
while :; do
  if existing="$(az keyvault secret list --vault-name "$vault" --query '[].name' --output tsv 2>/dev/null)"; then
    break
  fi
  if [ "$try" -ge "$attempts" ]; then
    log "cannot list the secrets of Key Vault $vault (is your account Key Vault Secrets Officer there?)"
    exit 1
  fi
  log "Key Vault $vault not readable yet (role assignments propagating); retrying in ${retry_seconds} s ($try/$attempts)"
  try=$((try + 1))
  sleep "$retry_seconds"
done

has_secret() {
  printf '%s\n' "$existing" | grep -Fqx -- "$1"
}

umask 077
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT INT TERM

# create_secret NAME BYTES: a random value of BYTES bytes, base64, written through a 0600 temp file
# so it never appears on a command line or in the output.
create_secret() {
  openssl rand -base64 "$2" | tr -d '\n' >"$tmp"
  az keyvault secret set --vault-name "$vault" --name "$1" --file "$tmp" --encoding utf-8 \
    --content-type text/plain --output none
  : >"$tmp"
}

created=0
if [ -n "${JWT_JWKS_URL:-}" ]; then
  log "JWT_JWKS_URL is set: the app validates tokens with keys, no JWT secret needed"
elif has_secret "$jwt_name"; then
  log "secret $jwt_name present"
else
  create_secret "$jwt_name" 48
  created=1
  log "generated secret $jwt_name (share it with the frontend: docs/runbook.md)"
fi

if has_secret "$key_name"; then
  log "secret $key_name present"
else
  create_secret "$key_name" 32
  created=1
  log "generated secret $key_name"
fi

# The app creates container groups at run time, so no deployment registers their resource provider,
# and the app's identity may not (it has no */register/action). A subscription that never used ACI
# answers MissingSubscriptionRegistration to the first create (learn.microsoft.com/azure/
# azure-resource-manager/troubleshooting/error-register-resource-provider). Idempotent.
provider=Microsoft.ContainerInstance
state="$(az provider show --namespace "$provider" --query registrationState --output tsv 2>/dev/null || true)"
if [ "$state" = Registered ]; then
  log "resource provider $provider registered"
else
  log "registering resource provider $provider (was: ${state:-unknown}); this can take a few minutes"
  if ! az provider register --namespace "$provider" --wait --output none; then
    log "cannot register $provider: ask an owner of the subscription to run: az provider register --namespace $provider"
    exit 1
  fi
fi

if [ "$created" -eq 1 ]; then
  log "restarting $app so its Key Vault references resolve"
  az functionapp restart --name "$app" --resource-group "$group" --output none
fi
