// One storage account with the data-plane roles its users need, assigned on this account only.
// Used three times: the Functions host (runtime, Durable Functions task hub, deployment package),
// the app's data (tables) and the workspaces (Azure Files shares mounted by ACI).

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Region of the account.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Redundancy of the account.')
param skuName string = 'Standard_LRS'

@description('Shared-key (account key) access. Only the workspace account needs it: ACI mounts Azure Files shares with the account key.')
param allowSharedKeyAccess bool = false

@description('Blob containers to create.')
param blobContainers array = []

@minValue(0)
@maxValue(365)
@description('Days a deleted file share (and its snapshots) can be restored; 0 leaves the file service alone.')
param shareSoftDeleteDays int = 0

@description('Role assignments on this account: objects with principalId and roleDefinitionId (a built-in role GUID).')
param roleAssignments array = []

@description('Log Analytics workspace receiving the account\'s service logs; empty for none.')
param logAnalyticsId string = ''

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  // checkov:skip=CKV_AZURE_206:Redundancy is a parameter: workspace files and app data are zone-redundant (Standard_ZRS; GZRS where the region pair allows it), host runtime state (rebuildable) locally redundant.
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: allowSharedKeyAccess
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    // checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: no private network exists between Flex Consumption, ACI and storage in this deployment.
    publicNetworkAccess: 'Enabled'
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
    // checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration and ACI public container groups reach storage over its public endpoint; access is by Entra RBAC (shared key off) except the workspace account, whose keys only the API identity can list.
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = if (!empty(blobContainers)) {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in blobContainers: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = if (shareSoftDeleteDays > 0) {
  parent: account
  name: 'default'
  properties: {
    shareDeleteRetentionPolicy: {
      enabled: true
      days: shareSoftDeleteDays
    }
  }
}

resource roles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in roleAssignments: {
    name: guid(account.id, role.principalId, role.roleDefinitionId)
    scope: account
    properties: {
      principalId: role.principalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.roleDefinitionId)
    }
  }
]

// Service logs (reads, writes, deletes) of every storage service go to Log Analytics.
resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsId)) {
  name: 'to-log-analytics'
  scope: blobServiceForLogs
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource queueLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsId)) {
  name: 'to-log-analytics'
  scope: queueServiceForLogs
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource tableLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsId)) {
  name: 'to-log-analytics'
  scope: tableServiceForLogs
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource fileLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsId)) {
  name: 'to-log-analytics'
  scope: fileServiceForLogs
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

// The default services exist with every account; these references give the logs a scope.
resource blobServiceForLogs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource queueServiceForLogs 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource tableServiceForLogs 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource fileServiceForLogs 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = account.properties.primaryEndpoints.table
output fileEndpoint string = account.properties.primaryEndpoints.file
