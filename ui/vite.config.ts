// Library build of Muxly's pages for Airflow's react_apps loader: one UMD file that sets globalThis.AirflowPlugin.
// React, the router, Chakra and Emotion are the host's own copies (globals Airflow 3.3 sets for plugins).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import cssInjectedByJsPlugin from "vite-plugin-css-injected-by-js";

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

const globals: Record<string, string> = {
  react: "React",
  "react-dom": "ReactDOM",
  "react/jsx-runtime": "ReactJSXRuntime",
  "react-router-dom": "ReactRouterDOM",
  "@chakra-ui/react": "ChakraUI",
  "@emotion/react": "EmotionReact",
};

export default defineConfig({
  publicDir: false,
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  plugins: [cssInjectedByJsPlugin()],
  build: {
    // The output lives in the Python package (shipped in the wheel); emptyOutDir keeps the icon next to it.
    outDir: here("../muxly_provider/ui/static"),
    emptyOutDir: false,
    sourcemap: false,
    reportCompressedSize: false,
    lib: {
      entry: here("src/main.tsx"),
      formats: ["umd"],
      name: "AirflowPlugin",
      fileName: () => "muxly-ui.js",
    },
    rollupOptions: {
      external: Object.keys(globals),
      // react-query's "use client" directives mean nothing in a browser bundle.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
      output: { globals },
    },
  },
});
