// Azure Container Registry for the workspace images (dev8-base and one per template: dev8-node,
// dev8-python, dev8-go, dev8-fullstack, dev8-rust, dev8-java, dev8-data-science) and the TLS
// sidecar (dev8-tls). No admin user: ACI pulls with the workspace
// pull identity (AcrPull on this registry only); CI pushes with its federated identity.

@description('Registry name (5-50 letters and digits, globally unique).')
@minLength(5)
@maxLength(50)
param name string

@description('Region of the registry.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@allowed([
  'Basic'
  'Standard'
  'Premium'
])
@description('Registry tier. Standard has the storage and throughput for a handful of multi-GB images.')
param sku string = 'Standard'

@description('Principal id of the identity ACI uses to pull workspace images.')
param pullPrincipalId string

// AcrPull: pull artifacts from a container registry.
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    // checkov:skip=CKV_AZURE_139:ACI container groups (public IPs) and the repository host's CI runners pull and push over the public endpoint; access is Entra-only (admin user off, no anonymous pull).
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_166:Quarantine needs Premium and a scanner in the push path; images come only from this repository's CI (ACR Tasks), and Microsoft Defender for Containers scans the registry when the subscription enables it (runbook).
  }
}

resource pullRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, pullPrincipalId, acrPullRoleId)
  scope: registry
  properties: {
    principalId: pullPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
  }
}

output name string = registry.name
output loginServer string = registry.properties.loginServer
