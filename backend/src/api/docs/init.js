// Kept out of index.html so the docs page needs no inline script under the CSP.
window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
