// Builds the /join page into dist/: the bundled script (esbuild), the HTML and CSS, and the
// detector's model weights and tfjs .wasm files copied from node_modules (pinned by
// package-lock.json). The API serves dist/ (JOIN_PAGE_DIR); nothing is fetched at run time.
import { cpSync, mkdirSync, rmSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";

const out = process.argv[2] || "dist";
const assets = join(out, "assets");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(assets, "model"), { recursive: true });
mkdirSync(join(assets, "wasm"), { recursive: true });

buildSync({
  entryPoints: ["src/join.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome100", "firefox100", "safari15"],
  outfile: join(assets, "join.js"),
  legalComments: "linked",
});
cpSync("src/index.html", join(out, "index.html"));
cpSync("src/join.css", join(assets, "join.css"));
const model = "node_modules/@vladmandic/face-api/model";
for (const name of ["tiny_face_detector_model", "face_landmark_68_tiny_model"]) {
  cpSync(join(model, `${name}-weights_manifest.json`), join(assets, "model", `${name}-weights_manifest.json`));
  cpSync(join(model, `${name}.bin`), join(assets, "model", `${name}.bin`));
}
cpSync("models/yunet", join(assets, "model", "yunet"), { recursive: true });
const wasm = "node_modules/@tensorflow/tfjs-backend-wasm/dist";
for (const name of ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"]) {
  cpSync(join(wasm, name), join(assets, "wasm", name));
}
cpSync("node_modules/@vladmandic/face-api/LICENSE", join(assets, "LICENSE.face-api.txt"));

const sizes = (dir) =>
  readdirSync(dir, { recursive: true })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .reduce((sum, f) => sum + statSync(f).size, 0);
console.log(`built ${out}: ${(sizes(out) / 1048576).toFixed(2)} MiB`);
