import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build lands inside the Python package, so `chatd server` serves it and a wheel carries it.
// `npm run dev` serves the sources with the API proxied to a server on CHATD_URL.
const api = process.env.CHATD_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/chatd/web_dist",
    emptyOutDir: true,
    // No inline module-preload polyfill script: the server's policy allows no inline script.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/api": { target: api, ws: true, changeOrigin: false },
    },
  },
});
