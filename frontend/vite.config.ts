import { defineConfig } from "vite";

// Built into frontend/dist; Django serves dist/index.html at /portal/ (portal.views.app) and
// whitenoise serves the assets under /static/portal/ (STATICFILES_DIRS prefix "portal").
export default defineConfig({
  base: "/static/portal/",
  build: { outDir: "dist", emptyOutDir: true, assetsDir: "assets", sourcemap: false },
});
