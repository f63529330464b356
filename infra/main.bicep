// Dev8 backend: everything `azd up` deploys.
//
//   rg-<env>             Function App (Flex Consumption, Python), its plan, the API identity and the
//                        workspace pull identity, host storage, data storage (tables), Key Vault,
//                        Container Registry, Log Analytics + Application Insights.
//   rg-<env>-workspaces  what the app creates at run time: one ACI container group per environment
//                        (the API identity is ACI Contributor here and nowhere else) and the
//                        workspace storage account holding one Azure Files share per environment.
//
// Every DEV8_* setting the app reads is wired below (dev8Settings) or in modules/functionapp.bicep;
// tests/infra/test_settings_wiring.py fails when one is missing or unknown.

targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; part of every resource name.')
param environmentName string

// Regions that offer both Flex Consumption (the list of the official Flex quickstarts,
// learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#view-currently-supported-regions)
// and zone-redundant storage, which the data and workspace accounts use
// (learn.microsoft.com/azure/storage/common/storage-redundancy#zone-redundant-storage). Checked
// December 2026; `az functionapp list-flexconsumption-locations` gives today's Flex list.
@minLength(1)
@description('Region of the backend (Flex Consumption and zone-redundant storage).')
@allowed([
  'australiaeast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'westeurope'
  'westus2'
  'westus3'
])
param location string

@description('Region of the workspace container groups and shares (DEV8_AZURE_LOCATION); its storage is zone-redundant too.')
@allowed([
  'australiaeast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'westeurope'
  'westus2'
  'westus3'
])
param workspaceLocation string = location

@description('Object id of the person or pipeline running azd (AZURE_PRINCIPAL_ID): manages the Key Vault secrets. Empty for none.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Kind of principalId.')
param principalType string = 'User'

@secure()
@description('JWT signing secret shared with the frontend (>= 32 bytes). Empty keeps the vault\'s value; the post-provision hook generates one when the vault has none.')
param jwtSecret string = ''

@secure()
@description('Key sealing per-environment secrets: base64 of 32 bytes. Empty keeps the vault\'s value; the post-provision hook generates one when the vault has none. Never rotate it casually: rows sealed with the old key stop opening.')
param secretsKey string = ''

@description('JWKS endpoint for RS256/ES256 tokens. Set it only when the frontend signs with keys: then DEV8_JWT_SECRET is left out (the app refuses both modes at once).')
param jwtJwksUrl string = ''

@description('Expected JWT issuer (DEV8_JWT_ISSUER); empty: not checked.')
param jwtIssuer string = 'dev8-web'

@description('Expected JWT audience (DEV8_JWT_AUDIENCE); empty: not checked.')
param jwtAudience string = 'dev8-api'

@minLength(1)
@description('Tag of the workspace images the app starts (DEV8_IMAGE_TAG): the commit the images workflow built, never latest (ACI pulls the image again on every start, so a moving tag would upgrade users silently). The app refuses latest with the aci backend.')
param imageTag string

@description('Prefix of the app\'s table names (DEV8_TABLE_PREFIX).')
param tablePrefix string = 'dev8'

@minValue(5)
@maxValue(240)
param idleTimeoutMinutes int = 30

@minValue(1)
@maxValue(1000)
param maxEnvironmentsPerUser int = 10

@minValue(1)
@maxValue(100)
param maxRunningPerUser int = 3

@minValue(1)
@maxValue(3650)
param retentionDays int = 30

@description('Days a retired environment can be restored from its workspace snapshot.')
@minValue(1)
@maxValue(365)
param restoreGraceDays int = 7

@description('Hours after which even an active environment is stopped (like Codespaces).')
@minValue(1)
@maxValue(168)
param maxSessionHours int = 12

@description('USD a user may spend a month; empty for no budget. A token\'s dev8_monthly_budget claim wins.')
param monthlyBudgetPerUser string = ''

@description('Minutes an orphan container group is left alone before the reconciler removes it.')
@minValue(1)
@maxValue(1440)
param orphanGraceMinutes int = 30

@description('Seconds between two snapshots of a running workspace (taken only when something changed).')
@minValue(30)
@maxValue(3600)
param snapshotIntervalSeconds int = 120

@description('Workspace snapshots pruning keeps: the last N, one an hour for N hours, one a day for N days.')
@minValue(1)
@maxValue(100)
param snapshotKeepLast int = 10
@minValue(0)
@maxValue(168)
param snapshotKeepHourly int = 24
@minValue(0)
@maxValue(366)
param snapshotKeepDaily int = 7

@description('Seconds a stop waits for the running workspace to take its final snapshot (then it stops anyway).')
@minValue(0)
@maxValue(600)
param snapshotStopWaitSeconds int = 120

@description('Hours between two prunes of a running workspace\'s snapshot repository (asked by the idle sweep timer).')
@minValue(1)
@maxValue(720)
param snapshotPruneHours int = 24

@description('Rate limits per app instance: commands and reads per user a minute, failed authentications per client address a minute.')
@minValue(1)
param rateCommandsPerMinute int = 60
@minValue(1)
param rateReadsPerMinute int = 600
@minValue(1)
param rateAuthFailuresPerMinute int = 60

@description('NCRONTAB schedules (seconds first) of the idle sweep, retention and reconciler timers.')
param idleSweepSchedule string = '0 */5 * * * *'
param retentionSchedule string = '0 30 3 * * *'
param reconcileSchedule string = '0 */10 * * * *'

@description('Largest CPU count one environment may ask for (a number, e.g. 8 or 3.5).')
param maxCpuCores string = '8'

@description('Largest memory (GB) one environment may ask for (a number).')
param maxMemoryGb string = '16'

@minValue(1)
@maxValue(4096)
param maxStorageGb int = 200

@minValue(10)
@maxValue(3600)
param provisionTimeoutSeconds int = 600

@description('Browser origins allowed to call the API, comma-separated (the frontend\'s URL, from azd\'s CORS_ALLOWED_ORIGINS); empty: none.')
param corsAllowedOrigins string = ''

// "The lowest maximum scale is currently 40" and the highest 1000 (flex-consumption-plan,
// "Instance count").
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Create a custom role that lets the app read ACI usages (a quota check before each create). Creating a role definition needs Owner or User Access Administrator; without it the app skips the check and a full quota is reported when the create fails.')
param createUsageReaderRole bool = false

@minValue(1)
@maxValue(365)
@description('Days a deleted workspace share stays restorable (Azure Files share soft delete).')
param workspaceShareSoftDeleteDays int = 14

var tags = {
  'azd-env-name': environmentName
  app: 'dev8'
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var deploymentContainerName = 'app-package'

// Built-in role definition ids (Azure RBAC).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageAccountKeyOperator: '81a9662b-bebf-436f-a333-f67b29880f12'
}

resource appGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

resource workspaceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}-workspaces'
  location: workspaceLocation
  tags: union(tags, { 'dev8-role': 'workspaces' })
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: appGroup
  params: {
    location: location
    tags: tags
    apiIdentityName: 'id-api-${token}'
    pullIdentityName: 'id-ws-pull-${token}'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: appGroup
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${token}'
    applicationInsightsName: 'appi-${token}'
    publisherPrincipalId: identity.outputs.apiPrincipalId
  }
}

// Functions host: runtime state, the Durable Functions task hub (blobs, queues, tables) and the
// deployment package. The roles are the ones identity-based AzureWebJobsStorage and the Durable
// Functions Azure Storage provider need.
module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  scope: appGroup
  params: {
    name: 'sthost${token}'
    location: location
    tags: tags
    skuName: 'Standard_LRS'
    allowSharedKeyAccess: false
    blobContainers: [
      deploymentContainerName
    ]
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    roleAssignments: [
      {
        principalId: identity.outputs.apiPrincipalId
        roleDefinitionId: roles.storageBlobDataOwner
      }
      {
        principalId: identity.outputs.apiPrincipalId
        roleDefinitionId: roles.storageQueueDataContributor
      }
      {
        principalId: identity.outputs.apiPrincipalId
        roleDefinitionId: roles.storageTableDataContributor
      }
    ]
  }
}

// The app's records (environments, audit trail, usage, idempotency keys).
module dataStorage 'modules/storage.bicep' = {
  name: 'data-storage'
  scope: appGroup
  params: {
    name: 'stdata${token}'
    location: location
    tags: tags
    skuName: 'Standard_ZRS'
    allowSharedKeyAccess: false
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    roleAssignments: [
      {
        principalId: identity.outputs.apiPrincipalId
        roleDefinitionId: roles.storageTableDataContributor
      }
    ]
  }
}

// Workspace shares. ACI mounts Azure Files only with the account key, so shared-key access stays
// on for this account alone; the API identity may list its keys (Key Operator) on this account only.
module workspaceStorage 'modules/storage.bicep' = {
  name: 'workspace-storage'
  scope: workspaceGroup
  params: {
    name: 'stws${token}'
    location: workspaceLocation
    tags: tags
    skuName: 'Standard_ZRS'
    allowSharedKeyAccess: true
    shareSoftDeleteDays: workspaceShareSoftDeleteDays
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    roleAssignments: [
      {
        principalId: identity.outputs.apiPrincipalId
        roleDefinitionId: roles.storageAccountKeyOperator
      }
    ]
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'key-vault'
  scope: appGroup
  params: {
    name: 'kv-${token}'
    location: location
    tags: tags
    readerPrincipalId: identity.outputs.apiPrincipalId
    adminPrincipalId: principalId
    adminPrincipalType: principalType
    jwtSecret: jwtSecret
    secretsKey: secretsKey
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: appGroup
  params: {
    name: 'acr${token}'
    location: location
    tags: tags
    pullPrincipalId: identity.outputs.pullPrincipalId
  }
}

module workspaceAccess 'modules/workspace-access.bicep' = {
  name: 'workspace-access'
  scope: workspaceGroup
  params: {
    principalId: identity.outputs.apiPrincipalId
  }
}

// Checking the region's ACI quota before a create reads location usages, which live at the
// subscription scope: a custom role with only those reads, assigned at the subscription.
// Role names are unique per tenant: the subscription's hash keeps two subscriptions using the same
// azd environment name apart.
resource aciUsageReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (createUsageReaderRole) {
  name: guid(subscription().id, environmentName, 'dev8-aci-usage-reader')
  properties: {
    roleName: 'Dev8 ACI usage reader (${environmentName}, ${uniqueString(subscription().id)})'
    description: 'Reads Azure Container Instances location usages and capabilities (quota checks before creating a workspace).'
    type: 'CustomRole'
    assignableScopes: [
      subscription().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.ContainerInstance/locations/usages/read'
          'Microsoft.ContainerInstance/locations/capabilities/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

resource aciUsageReaderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (createUsageReaderRole) {
  name: guid(subscription().id, environmentName, 'dev8-aci-usage-reader', 'api')
  properties: {
    principalId: identity.outputs.apiPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: aciUsageReader.id
  }
}

// Every DEV8_* setting the app reads, for production (aci + azurefiles + managed identity).
// Local-only settings (DEV8_TABLES_CONNECTION, DEV8_LOCAL_*, DEV8_CODE_SERVER_BIN, DEV8_SIMULATED_*)
// are deliberately absent; DEV8_PUBLIC_BASE_URL is set in modules/functionapp.bicep.
var jwtModeSettings = empty(jwtJwksUrl) ? {
  DEV8_JWT_SECRET: keyVault.outputs.jwtSecretReference
} : {
  DEV8_JWT_JWKS_URL: jwtJwksUrl
}

var dev8Settings = union(jwtModeSettings, {
  DEV8_JWT_ISSUER: jwtIssuer
  DEV8_JWT_AUDIENCE: jwtAudience
  DEV8_TABLES_ENDPOINT: dataStorage.outputs.tableEndpoint
  DEV8_TABLE_PREFIX: tablePrefix
  DEV8_SECRETS_KEY: keyVault.outputs.secretsKeyReference
  DEV8_COMPUTE_BACKEND: 'aci'
  DEV8_WORKSPACE_BACKEND: 'azurefiles'
  DEV8_AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  DEV8_AZURE_RESOURCE_GROUP: workspaceGroup.name
  DEV8_AZURE_LOCATION: workspaceLocation
  DEV8_WORKSPACE_STORAGE_ACCOUNT: workspaceStorage.outputs.name
  DEV8_REGISTRY: registry.outputs.loginServer
  DEV8_IMAGE_TAG: imageTag
  DEV8_MANAGED_IDENTITY_CLIENT_ID: identity.outputs.apiClientId
  DEV8_REGISTRY_IDENTITY_ID: identity.outputs.pullIdentityId
  DEV8_IDLE_TIMEOUT_MINUTES: string(idleTimeoutMinutes)
  DEV8_MAX_ENVIRONMENTS_PER_USER: string(maxEnvironmentsPerUser)
  DEV8_MAX_RUNNING_PER_USER: string(maxRunningPerUser)
  DEV8_RETENTION_DAYS: string(retentionDays)
  DEV8_RESTORE_GRACE_DAYS: string(restoreGraceDays)
  DEV8_MAX_SESSION_HOURS: string(maxSessionHours)
  DEV8_MONTHLY_BUDGET_PER_USER: monthlyBudgetPerUser
  DEV8_ORPHAN_GRACE_MINUTES: string(orphanGraceMinutes)
  DEV8_SNAPSHOT_INTERVAL_SECONDS: string(snapshotIntervalSeconds)
  DEV8_SNAPSHOT_KEEP_LAST: string(snapshotKeepLast)
  DEV8_SNAPSHOT_KEEP_HOURLY: string(snapshotKeepHourly)
  DEV8_SNAPSHOT_KEEP_DAILY: string(snapshotKeepDaily)
  DEV8_SNAPSHOT_STOP_WAIT_SECONDS: string(snapshotStopWaitSeconds)
  DEV8_SNAPSHOT_PRUNE_HOURS: string(snapshotPruneHours)
  DEV8_RATE_COMMANDS_PER_MINUTE: string(rateCommandsPerMinute)
  DEV8_RATE_READS_PER_MINUTE: string(rateReadsPerMinute)
  DEV8_RATE_AUTH_FAILURES_PER_MINUTE: string(rateAuthFailuresPerMinute)
  DEV8_IDLE_SWEEP_SCHEDULE: idleSweepSchedule
  DEV8_RETENTION_SCHEDULE: retentionSchedule
  DEV8_RECONCILE_SCHEDULE: reconcileSchedule
  DEV8_MAX_CPU_CORES: maxCpuCores
  DEV8_MAX_MEMORY_GB: maxMemoryGb
  DEV8_MAX_STORAGE_GB: string(maxStorageGb)
  DEV8_PROVISION_TIMEOUT_SECONDS: string(provisionTimeoutSeconds)
})

module api 'modules/functionapp.bicep' = {
  name: 'api'
  scope: appGroup
  params: {
    name: 'func-dev8-${token}'
    planName: 'plan-dev8-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.apiIdentityId
    identityClientId: identity.outputs.apiClientId
    hostStorageName: hostStorage.outputs.name
    hostBlobEndpoint: hostStorage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    corsAllowedOrigins: empty(corsAllowedOrigins) ? [] : split(replace(corsAllowedOrigins, ' ', ''), ',')
    dev8Settings: dev8Settings
  }
}

// azd reads these after provisioning (azd env get-values); the hooks and the runbook use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = appGroup.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output API_URL string = '${api.outputs.url}/api'
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_JWT_SECRET_NAME string = keyVault.outputs.jwtSecretName
output AZURE_KEY_VAULT_SECRETS_KEY_NAME string = keyVault.outputs.secretsKeyName
output WORKSPACE_RESOURCE_GROUP string = workspaceGroup.name
output WORKSPACE_LOCATION string = workspaceLocation
output WORKSPACE_STORAGE_ACCOUNT string = workspaceStorage.outputs.name
output WORKSPACE_PULL_IDENTITY_ID string = identity.outputs.pullIdentityId
output API_IDENTITY_CLIENT_ID string = identity.outputs.apiClientId
output LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsName
