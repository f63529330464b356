// The Dev8 API: a Python Function App on the Flex Consumption plan, running as the API identity.
// The host storage (AzureWebJobsStorage, Durable Functions task hub, deployment package) is reached
// with that identity; there is no storage connection string anywhere. Secrets come from Key Vault
// references resolved with the same identity.

@description('Function App name (globally unique host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Region of the plan and the app.')
param location string

@description('Tags applied to every resource; the app also gets azd-service-name.')
param tags object = {}

@description('Resource id of the API identity.')
param identityId string

@description('Client id of the API identity.')
param identityClientId string

@description('Host storage account name (runtime, Durable Functions, deployment package).')
param hostStorageName string

@description('Blob endpoint of the host storage account.')
param hostBlobEndpoint string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('Python version of the Flex Consumption runtime.')
param pythonVersion string = '3.11'

// flex-consumption-plan, "Instance count": the lowest maximum is 40, the highest 1000.
@minValue(40)
@maxValue(1000)
@description('Upper bound of instances Flex Consumption scales out to.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance.')
param instanceMemoryMB int = 2048

@description('Origins allowed to call the API from a browser (the Dev8 frontend). Empty: none.')
param corsAllowedOrigins array = []

@description('DEV8_* application settings (name to value), built by main.bicep.')
param dev8Settings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  // checkov:skip=CKV_AZURE_225:Flex Consumption zone redundancy is offered in a subset of regions only; enable it per region (plan property zoneRedundant) when the chosen region supports it.
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // checkov:skip=CKV_AZURE_17:Client certificates are not part of the API's contract: callers present bearer JWTs over TLS.
    clientCertEnabled: false
    // checkov:skip=CKV_AZURE_222:This is the public API that the Dev8 frontend and the workspace agents call; every route but the health checks requires a JWT.
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    // checkov:skip=CKV_AZURE_213:App Service health check is not offered on Flex Consumption; probes use GET /api/v1/ready (anonymous, checks Table Storage).
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      // checkov:skip=CKV_AZURE_212:Flex Consumption scales instances by itself up to maximumInstanceCount; there is no App Service plan instance minimum to set.
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Only Entra-authenticated deployments (azd, CI with OIDC): no basic-auth publishing credentials.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// Runtime settings. FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION are not set: Flex
// Consumption takes the runtime from functionAppConfig and refuses those settings.
var runtimeSettings = {
  AzureWebJobsStorage__accountName: hostStorageName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // The host refuses a body over 1 MiB before the worker receives it (its default is 100 MB:
  // learn.microsoft.com/azure/azure-functions/functions-app-settings#functions_request_body_size_limit);
  // the API takes 64 KiB and answers 413 up to here itself. The local host's limit is the same.
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1048576'
}

// The app's own base URL is known only once the site exists, hence a separate config resource.
// checkov reads this app-settings resource as if it were the site configuration, hence the skips of
// site-configuration checks below; the site's real configuration is on the site resource above.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:Callers authenticate with the frontend's JWTs, validated by the app itself; App Service Authentication (Easy Auth) would also reject the workspace agents' tokens.
  // checkov:skip=CKV_AZURE_222:Public API by design (see the site resource).
  // checkov:skip=CKV_AZURE_88:An Azure Files content share is an Elastic Premium/Windows feature; Flex Consumption deploys from the blob container in functionAppConfig.
  parent: site
  // checkov:skip=CKV_AZURE_66:Failed request tracing is an IIS (Windows App Service) feature; requests and failures go to Application Insights.
  // checkov:skip=CKV_AZURE_63:HTTP logging writes Windows App Service file logs; requests go to Application Insights.
  // checkov:skip=CKV_AZURE_65:Detailed error pages are a Windows App Service feature; the API answers structured JSON errors without stack traces.
  name: 'appsettings'
  // checkov:skip=CKV_AZURE_80:.NET Framework version does not apply to a Python app.
  properties: union(runtimeSettings, dev8Settings, {
    DEV8_PUBLIC_BASE_URL: 'https://${site.properties.defaultHostName}'
  })
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output url string = 'https://${site.properties.defaultHostName}'
