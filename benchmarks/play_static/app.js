"use strict";
// The page of `python -m benchmarks.play`: shows the episode and sends keyboard and button commands to /api/*.

const KEY_ACTIONS = { w: 1, arrowup: 1, a: 2, arrowleft: 2, d: 3, arrowright: 3, s: 0, " ": 0 };
// Metric key -> decimals shown.
const METRICS = { distance_to_goal: 2, success: 0, spl: 3, ndtw: 3, oracle_success: 0, path_length: 2, collisions: 0 };
const $ = (id) => document.getElementById(id);

let state = null; // the last /api/state answer
let queue = Promise.resolve(); // requests run one after another
let pending = 0; // requests queued or in flight
let running = null; // controller of the run in progress, or null

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function say(text, kind = "info") {
  $("message").textContent = text;
  $("message").className = `message ${kind}`;
}

function loadImage(img, src) {
  return new Promise((resolve) => {
    img.onload = img.onerror = () => resolve();
    img.src = src;
  });
}

function fmt(value, digits) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}

function statusOf(s) {
  if (!s.done) return ["running", "running"];
  if (s.truncated) return ["step limit", "failure"];
  return s.metrics.success >= 1 ? ["success", "success"] : ["stopped", "failure"];
}

async function show(s) {
  state = s;
  await Promise.all(["rgb", "depth", "map"].map((k) => loadImage($(k), `/frame/${k}.png?v=${s.frame}`)));
  $("instruction").textContent = s.instruction || "(this episode has no instruction)";
  $("episode-id").textContent = s.episode_id;
  $("scene").textContent = s.scene_id.split("/").pop();
  $("step").textContent = s.step;
  $("max-steps").textContent = s.max_steps;
  const how = [s.last_action, s.controller, s.collided ? "bumped" : null].filter(Boolean);
  $("last-action").textContent = how.length ? how.join(" · ") : "—";
  $("expert-action").textContent = s.expert_action || "—";
  $("position").textContent = `${fmt(s.position[0], 2)}, ${fmt(s.position[2], 2)} m`;
  $("heading").textContent = `${fmt(s.heading_deg, 0)}°`;
  for (const [key, digits] of Object.entries(METRICS)) $(`m-${key}`).textContent = fmt(s.metrics[key], digits);
  const [label, kind] = statusOf(s);
  $("status").textContent = label;
  $("status").className = `badge ${kind}`;
  $("agent-name").textContent = s.agent || "none (start with --checkpoint)";
  $("video-path").textContent = s.video || "—";
  document.body.dataset.frame = String(s.frame);
  updateButtons();
}

// Queue a request that answers with a state; resolves to true when it succeeded.
function perform(request) {
  pending += 1;
  const job = queue.then(async () => {
    try {
      await show(await request());
      return true;
    } catch (err) {
      say(err.message, "error");
      running = null;
      return false;
    } finally {
      pending -= 1;
      updateButtons();
    }
  });
  queue = job;
  return job;
}

function updateButtons() {
  const over = !state || state.done;
  const noAgent = !state || !state.agent;
  for (const controller of ["expert", "agent"]) {
    const run = $(`${controller}-run`);
    const mine = running === controller;
    run.textContent = mine ? "Stop" : run.dataset.label;
    run.classList.toggle("active", mine);
    run.disabled = !mine && (over || running !== null || (controller === "agent" && noAgent));
    $(`${controller}-step`).disabled = over || running !== null || (controller === "agent" && noAgent);
  }
  $("agent-step").title = $("agent-run").title = noAgent ? "start the server with --checkpoint AGENT_DIR" : "";
}

async function toggleRun(controller) {
  if (running !== null) {
    running = null; // a second click stops the run after the current step
    return;
  }
  running = controller;
  updateButtons();
  while (running === controller && state && !state.done) {
    if (!(await perform(() => api("/api/step", { controller })))) break;
  }
  running = null;
  updateButtons();
}

function reset() {
  running = null;
  const body = {};
  if ($("episode").value !== "") body.episode_id = $("episode").value;
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  say("");
  return perform(() => api("/api/reset", body));
}

function saveVideo() {
  say("Writing the video…");
  return perform(async () => {
    const saved = await api("/api/video", {});
    say(`Saved ${saved.frames} frames to ${saved.path}`, "ok");
    return api("/api/state");
  });
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, select, textarea")) return;
  const key = event.key.toLowerCase();
  if (key === "r") {
    event.preventDefault();
    reset();
    return;
  }
  if (!(key in KEY_ACTIONS)) return;
  event.preventDefault();
  running = null;
  if (pending > 0 || !state || state.done) return; // drop key repeats while a step is on its way
  perform(() => api("/api/step", { action: KEY_ACTIONS[key] }));
}

function onClick(id, handler) {
  $(id).addEventListener("click", (event) => {
    event.currentTarget.blur(); // Space must drive the agent, not click the focused button again
    handler();
  });
}

async function loadEpisodes() {
  const { episodes } = await api("/api/episodes");
  for (const ep of episodes) {
    const option = document.createElement("option");
    option.value = ep.episode_id;
    option.textContent = `${ep.episode_id} · ${ep.scene_id.split("/").pop()}`;
    $("episode").append(option);
  }
}

function main() {
  document.addEventListener("keydown", onKey);
  onClick("expert-step", () => perform(() => api("/api/step", { controller: "expert" })));
  onClick("agent-step", () => perform(() => api("/api/step", { controller: "agent" })));
  onClick("expert-run", () => toggleRun("expert"));
  onClick("agent-run", () => toggleRun("agent"));
  onClick("save-video", saveVideo);
  $("reset-form").addEventListener("submit", (event) => {
    event.preventDefault();
    document.activeElement.blur();
    reset();
  });
  $("episode").addEventListener("change", (event) => event.target.blur());
  loadEpisodes().catch((err) => say(err.message, "error"));
  perform(() => api("/api/state"));
}

main();
