// Deployed at the workspace resource group's scope: lets the API identity create, start, stop and
// delete container groups there and nowhere else. Container groups do not exist before the app
// creates them, so their resource group is the narrowest scope possible; the built-in role covers
// Microsoft.ContainerInstance only (not subscription or resource-group Contributor).

@description('Principal id of the API identity.')
param principalId string

// Azure Container Instances Contributor Role: read/write access to container groups.
var containerInstancesContributorRoleId = '5d977122-f97e-4b4d-a52f-6b43003ddb4d'

resource aciContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, containerInstancesContributorRoleId)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', containerInstancesContributorRoleId)
  }
}

output roleAssignmentId string = aciContributor.id
