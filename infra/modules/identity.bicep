// Two user-assigned identities, kept apart on purpose:
// - the API identity runs the Function App and holds the backend's rights (tables, ACI, keys);
// - the workspace pull identity is attached to every workspace container group so ACI can pull
//   images from the registry. Code inside a workspace can obtain tokens for it, so it holds
//   AcrPull and nothing else. Never attach the API identity to a container group.

@description('Region of the identities.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Name of the API (Function App) identity.')
param apiIdentityName string

@description('Name of the identity that workspace container groups use to pull images.')
param pullIdentityName string

// Managed Identity Operator: read and assign a user-assigned identity.
var managedIdentityOperatorRoleId = 'f1a07417-d97a-45cb-824c-7a7467783830'

resource apiIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: apiIdentityName
  location: location
  tags: tags
}

resource pullIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: pullIdentityName
  location: location
  tags: tags
}

// Creating a container group that uses the pull identity needs .../assign/action on that one
// identity: granted on the identity itself, not on the resource group.
resource apiMayAssignPullIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pullIdentity.id, apiIdentity.id, managedIdentityOperatorRoleId)
  scope: pullIdentity
  properties: {
    principalId: apiIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', managedIdentityOperatorRoleId)
  }
}

output apiIdentityId string = apiIdentity.id
output apiIdentityName string = apiIdentity.name
output apiPrincipalId string = apiIdentity.properties.principalId
output apiClientId string = apiIdentity.properties.clientId
output pullIdentityId string = pullIdentity.id
output pullPrincipalId string = pullIdentity.properties.principalId
output pullClientId string = pullIdentity.properties.clientId
