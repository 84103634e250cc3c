// /docs: Swagger UI (swagger-ui-dist, copied beside this bundle by build.mjs) on this server's
// own OpenAPI document. A file rather than an inline script, so the page keeps the pages'
// Content-Security-Policy (no inline script).
function main() {
  const root = document.getElementById('swagger-ui');
  // SwaggerUIBundle is the global that swagger-ui-bundle.js defines.
  // eslint-disable-next-line no-undef
  SwaggerUIBundle({
    url: root.dataset.spec,
    domNode: root,
    deepLinking: true,
    // Nothing is sent to a validator elsewhere (the default asks validator.swagger.io).
    validatorUrl: null,
  });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
