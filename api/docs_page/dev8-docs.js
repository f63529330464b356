// Renders /api/v1/openapi.json with Swagger UI. A file of its own, not an inline script: the page's
// Content-Security-Policy allows scripts from this origin only.
window.addEventListener("load", function () {
  window.SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#api-docs",
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});
