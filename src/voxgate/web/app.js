// The playground page: wires the API key, the agent editor and the call view together.

import { AgentForm } from "./agent_form.js";
import { ApiClient, ApiError } from "./api_client.js";
import { VoiceCall, defaultWsBase } from "./call.js";
import { forgetApiKey, loadApiKey, saveApiKey } from "./credentials.js";
import { TextChat } from "./text_chat.js";
import { DEFAULT_TOOL_HANDLER_SOURCE, EXAMPLE_TOOLS, compileToolHandler } from "./tool_handler.js";

const $ = (selector) => document.querySelector(selector);

const ui = {
  pill: $("#connection-state"),
  banner: $("#error-banner"),
  bannerText: $("#error-text"),
  keyForm: $("#key-form"),
  keyInput: $("#api-key"),
  keyForget: $("#key-forget"),
  keyStatus: $("#key-status"),
  agentList: $("#agent-list"),
  agentListEmpty: $("#agent-list-empty"),
  agentFormTitle: $("#agent-form-title"),
  agentFormError: $("#agent-form-error"),
  agentFormStatus: $("#agent-form-status"),
  agentSave: $("#agent-save"),
  agentDelete: $("#agent-delete"),
  talkPanel: $("#talk-panel"),
  talkButton: $("#talk-button"),
  chatForm: $("#chat-form"),
  chatInput: $("#chat-input"),
  chatSend: $("#chat-send"),
  talkLabel: $("#talk-label"),
  talkAgent: $("#talk-agent"),
  talkHint: $("#talk-hint"),
  micLevel: $("#mic-level"),
  transcript: $("#transcript"),
  partial: $("#partial"),
  latencyLast: $("#latency-last"),
  latencyMedian: $("#latency-median"),
  latencyCount: $("#latency-count"),
  audioPlayed: $("#audio-played"),
  toolHandler: $("#tool-handler"),
  toolHandlerStatus: $("#tool-handler-status"),
};

const state = {
  api: null,
  agents: [],
  selectedId: null,
  call: null,
  chat: null, // a TextChat, while one is open
  chatAgentId: null,
  callState: "idle",
  agentBubbles: new Map(), // reply_id -> <li>
  toolRows: new Map(), // call_id -> <li>
  latencies: [],
};

const agentForm = new AgentForm($("#agent-form"));

// --- messages ------------------------------------------------------------------------------------
function showError(message) {
  ui.bannerText.textContent = message;
  ui.banner.hidden = false;
}

function clearError() {
  ui.banner.hidden = true;
  ui.bannerText.textContent = "";
}

function setStatus(element, message, kind = "") {
  element.textContent = message;
  element.dataset.kind = kind;
}

$("#error-dismiss").addEventListener("click", clearError);

// --- API key -------------------------------------------------------------------------------------
async function useKey(key, { announce = true } = {}) {
  const api = new ApiClient(key);
  setStatus(ui.keyStatus, "Checking the key…");
  try {
    const agents = await api.listAgents();
    state.api = api;
    saveApiKey(key);
    ui.keyForget.hidden = false;
    setStatus(ui.keyStatus, announce ? "Key accepted." : "Using the key saved in this tab.", "ok");
    clearError();
    renderAgents(Array.isArray(agents) ? agents : agents?.agents ?? []);
    updateTalkButton();
  } catch (error) {
    state.api = null;
    if (error instanceof ApiError && error.status === 401) forgetApiKey();
    setStatus(ui.keyStatus, error.status === 401 ? "Not accepted." : "Could not check the key.", "error");
    showError(error.message);
    renderAgents([]);
    updateTalkButton();
    ui.keyInput.focus();
  }
}

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) {
    setStatus(ui.keyStatus, "Enter an API key first.", "error");
    ui.keyInput.focus();
    return;
  }
  useKey(key);
});

ui.keyForget.addEventListener("click", () => {
  state.call?.hangUp();
  forgetApiKey();
  state.api = null;
  ui.keyInput.value = "";
  ui.keyForget.hidden = true;
  setStatus(ui.keyStatus, "Key forgotten.");
  renderAgents([]);
  selectAgent(null);
  ui.keyInput.focus();
});

// --- agents --------------------------------------------------------------------------------------
function requireKey() {
  if (state.api) return true;
  showError("Enter your API key first.");
  ui.keyInput.focus();
  return false;
}

function renderAgents(agents) {
  state.agents = agents;
  ui.agentList.replaceChildren(
    ...agents.map((agent) => {
      const item = document.createElement("li");
      item.className = "agent-item";
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.agentId = agent.id;
      if (agent.id === state.selectedId) button.setAttribute("aria-current", "true");
      const name = document.createElement("span");
      name.className = "agent-name";
      name.textContent = agent.name;
      const meta = document.createElement("span");
      meta.className = "agent-meta";
      meta.textContent = agent.updated_at ? `updated ${formatWhen(agent.updated_at)}` : "";
      button.append(name, meta);
      button.addEventListener("click", () => selectAgent(agent.id));
      item.append(button);
      return item;
    }),
  );
  ui.agentListEmpty.hidden = agents.length > 0 || !state.api;
}

async function refreshAgents() {
  if (!requireKey()) return;
  try {
    const agents = await state.api.listAgents();
    renderAgents(Array.isArray(agents) ? agents : agents?.agents ?? []);
  } catch (error) {
    showError(error.message);
  }
}

async function selectAgent(id) {
  state.selectedId = id;
  ui.agentFormError.textContent = "";
  setStatus(ui.agentFormStatus, "");
  resetDelete();
  ui.agentList.querySelectorAll("button[data-agent-id]").forEach((button) => {
    if (button.dataset.agentId === id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  });
  if (id === null) {
    agentForm.show(null);
    ui.agentFormTitle.textContent = "New agent";
    ui.agentSave.textContent = "Create agent";
    ui.agentDelete.hidden = true;
    updateTalkButton();
    return;
  }
  try {
    const agent = await state.api.getAgent(id);
    if (state.selectedId !== id) return;
    agentForm.show(agent);
    ui.agentFormTitle.textContent = `Edit “${agent.name}”`;
    ui.agentSave.textContent = "Save changes";
    ui.agentDelete.hidden = false;
  } catch (error) {
    showError(error.message);
    if (error.status === 404) {
      state.selectedId = null;
      await refreshAgents();
      selectAgent(null);
    }
  }
  updateTalkButton();
}

$("#agents-refresh").addEventListener("click", refreshAgents);
$("#agent-new").addEventListener("click", () => {
  selectAgent(null);
  $("#agent-name").focus();
});
$("#tools-example").addEventListener("click", () => {
  $("#agent-tools").value = JSON.stringify(EXAMPLE_TOOLS, null, 2);
});

$("#agent-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!requireKey()) return;
  ui.agentFormError.textContent = "";
  const { body, error } = agentForm.read();
  if (error) {
    ui.agentFormError.textContent = error;
    return;
  }
  ui.agentSave.disabled = true;
  setStatus(ui.agentFormStatus, "Saving…");
  try {
    const saved = state.selectedId
      ? await state.api.updateAgent(state.selectedId, body)
      : await state.api.createAgent(body);
    state.selectedId = saved.id;
    await refreshAgents();
    await selectAgent(saved.id);
    setStatus(ui.agentFormStatus, "Saved.", "ok");
  } catch (failure) {
    ui.agentFormError.textContent = failure.message;
    if (failure.fields) agentForm.markServerErrors(failure.fields);
    setStatus(ui.agentFormStatus, "");
  } finally {
    ui.agentSave.disabled = false;
  }
});

function resetDelete() {
  ui.agentDelete.dataset.confirm = "false";
  ui.agentDelete.textContent = "Delete";
}

ui.agentDelete.addEventListener("click", async () => {
  if (!state.selectedId || !requireKey()) return;
  if (ui.agentDelete.dataset.confirm !== "true") {
    ui.agentDelete.dataset.confirm = "true";
    ui.agentDelete.textContent = "Confirm delete";
    setStatus(ui.agentFormStatus, "Press again to delete this agent for good.");
    return;
  }
  try {
    await state.api.deleteAgent(state.selectedId);
    state.selectedId = null;
    await refreshAgents();
    await selectAgent(null);
    setStatus(ui.agentFormStatus, "Agent deleted.", "ok");
  } catch (error) {
    ui.agentFormError.textContent = error.message;
  } finally {
    resetDelete();
  }
});
ui.agentDelete.addEventListener("blur", resetDelete);

// --- the call ------------------------------------------------------------------------------------
function updateTalkButton() {
  const busy = state.callState !== "idle";
  const agent = state.agents.find((a) => a.id === state.selectedId);
  ui.talkButton.disabled = !busy && !(state.api && state.selectedId);
  ui.talkButton.dataset.state = state.callState;
  ui.talkLabel.textContent = { idle: "Talk", connecting: "Cancel", live: "Hang up", ending: "Ending…" }[state.callState];
  ui.talkAgent.textContent = agent ? `Agent: ${agent.name}` : "No agent selected";
  const canChat = Boolean(state.api && state.selectedId) && state.callState === "idle";
  ui.chatInput.disabled = !canChat;
  ui.chatSend.disabled = !canChat;
}

function setCallState(callState, detail) {
  state.callState = callState;
  ui.pill.dataset.state = callState === "idle" && detail === "Call failed" ? "error" : callState;
  ui.pill.textContent = {
    idle: detail === "Call failed" ? "Disconnected (error)" : detail === "Call ended" ? "Call ended" : "Not connected",
    connecting: detail || "Connecting…",
    live: "Live",
    ending: "Ending…",
  }[callState];
  ui.talkPanel.dataset.callState = callState;
  ui.talkHint.textContent = {
    idle: "Select or create an agent, then press Talk and speak. Use headphones for the best barge-in.",
    connecting: detail || "Connecting…",
    live: "Speak now: the agent answers when you pause. Press Hang up or Esc to end the call.",
    ending: "Ending the call…",
  }[callState];
  updateTalkButton();
}

function addLine(kind, who, text) {
  const item = document.createElement("li");
  item.className = `turn ${kind}`;
  if (who) {
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who;
    item.append(label);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(body);
  ui.transcript.append(item);
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
  return item;
}

function formatMs(ms) {
  return ms === null || ms === undefined ? "–" : `${Math.round(ms)} ms`;
}

function renderLatency() {
  const sorted = [...state.latencies].sort((a, b) => a - b);
  const median = sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : null;
  ui.latencyLast.textContent = formatMs(state.latencies.at(-1));
  ui.latencyMedian.textContent = formatMs(median);
  ui.latencyCount.textContent = String(state.latencies.length);
}

function renderAudio(stats) {
  if (!stats) return;
  ui.audioPlayed.textContent = `${stats.playedSeconds.toFixed(1)} s`;
  const panel = ui.talkPanel.dataset;
  panel.samplesScheduled = String(stats.samplesScheduled);
  panel.samplesFlushed = String(stats.samplesFlushed);
  panel.flushes = String(stats.flushes);
  panel.chunks = String(stats.chunks);
  panel.underruns = String(stats.underruns);
}

const listener = {
  state: setCallState,
  failed(message) {
    addLine("system error", "", message);
    showError(message);
  },
  notice(message) {
    addLine("system error", "", message);
  },
  ready(sessionId) {
    addLine("system", "", `Connected · session ${sessionId}`);
  },
  resumed(sessionId) {
    addLine("system", "", `Reconnected · session ${sessionId} resumed`);
  },
  userSpeaking() {
    ui.partial.textContent = "…";
  },
  userPartial(text) {
    ui.partial.textContent = text ? `${text}…` : "…";
  },
  userFinal(text) {
    ui.partial.textContent = "";
    if (text) addLine("user", "You", text);
  },
  replyStarted(replyId) {
    const bubble = addLine("agent", "Agent", "…");
    bubble.dataset.replyId = replyId ?? "";
    state.agentBubbles.set(replyId, bubble);
  },
  agentText(replyId, text, interrupted) {
    let bubble = state.agentBubbles.get(replyId);
    if (!bubble) bubble = addLine("agent", "Agent", "");
    bubble.querySelector(".text").textContent = text || (interrupted ? "" : "…");
    bubble.classList.toggle("interrupted", interrupted);
    bubble.dataset.final = "true";
  },
  replyDone(replyId, status) {
    const bubble = state.agentBubbles.get(replyId);
    state.agentBubbles.delete(replyId);
    if (!bubble) return;
    if (status === "interrupted") bubble.classList.add("interrupted");
    if (bubble.dataset.final !== "true" || !bubble.querySelector(".text").textContent) {
      if (!bubble.querySelector(".latency")) bubble.remove();
    }
  },
  toolCall(call) {
    const row = addLine("tool", "Tool call", `${call.name}(${JSON.stringify(call.arguments)}) → running…`);
    row.dataset.callId = call.call_id;
    state.toolRows.set(call.call_id, { row, call });
  },
  toolResult(callId, { result, isError, state: outcome }) {
    const entry = state.toolRows.get(callId);
    if (!entry) return;
    const { row, call } = entry;
    const text = outcome === "discarded"
      ? "discarded (the reply was interrupted)"
      : `${isError ? "error " : ""}${result}`;
    row.querySelector(".text").textContent = `${call.name}(${JSON.stringify(call.arguments)}) → ${text}`;
    row.dataset.outcome = outcome;
    state.toolRows.delete(callId);
  },
  latency(replyId, ms) {
    state.latencies.push(ms);
    renderLatency();
    const bubble = state.agentBubbles.get(replyId);
    if (bubble) {
      const note = document.createElement("span");
      note.className = "latency";
      note.textContent = `answered ${Math.round(ms)} ms after you stopped`;
      bubble.append(note);
    }
  },
  micLevel(rms) {
    ui.micLevel.style.width = `${Math.min(100, Math.round(Math.sqrt(rms) * 180))}%`;
  },
  audio: renderAudio,
};

async function toolHandlerOrExplain() {
  try {
    const handler = await compileToolHandler(ui.toolHandler.value);
    setStatus(ui.toolHandlerStatus, "");
    return handler;
  } catch (error) {
    setStatus(ui.toolHandlerStatus, error.message, "error");
    showError(error.message);
    $("#tool-handler-details").open = true;
    return null;
  }
}

function closeChat() {
  state.chat?.end();
  state.chat = null;
  state.chatAgentId = null;
}

async function startCall() {
  if (!requireKey() || !state.selectedId) return;
  clearError();
  closeChat();
  const handler = await toolHandlerOrExplain();
  if (!handler) return;
  ui.transcript.replaceChildren();
  ui.partial.textContent = "";
  state.agentBubbles.clear();
  state.toolRows.clear();
  state.latencies = [];
  renderLatency();
  const call = new VoiceCall({ api: state.api, agentId: state.selectedId, toolHandler: handler, listener });
  state.call = call;
  await call.start();
}

ui.talkButton.addEventListener("click", () => {
  if (state.callState === "idle") {
    // The AudioContext must be created inside the click: start() does that before its first await.
    startCall();
  } else {
    state.call?.hangUp();
  }
});

// A text chat with the selected agent: the same conversation view, in a text session.
ui.chatForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text || !requireKey() || !state.selectedId || state.callState !== "idle") return;
  clearError();
  if (!state.chat?.open || state.chatAgentId !== state.selectedId) {
    closeChat();
    const handler = await toolHandlerOrExplain();
    if (!handler) return;
    ui.transcript.replaceChildren();
    state.agentBubbles.clear();
    state.toolRows.clear();
    const chat = new TextChat({
      api: state.api, agentId: state.selectedId, toolHandler: handler, listener, wsBase: defaultWsBase(),
    });
    state.chat = chat;
    state.chatAgentId = state.selectedId;
    try {
      await chat.start();
    } catch (error) {
      showError(error.message || String(error));
      closeChat();
      return;
    }
  }
  ui.chatInput.value = "";
  state.chat.say(text);
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.callState !== "idle") state.call?.hangUp();
});

// --- start-up ------------------------------------------------------------------------------------
function formatWhen(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
}

async function loadVoices() {
  try {
    const response = await fetch("/web/voices.json");
    const catalogue = await response.json();
    agentForm.setVoices(catalogue.voices, catalogue.default);
  } catch {
    agentForm.setVoices([{ voice_id: "ivy", gender: "female" }], "ivy");
  }
}

async function main() {
  ui.toolHandler.value = DEFAULT_TOOL_HANDLER_SOURCE;
  await loadVoices();
  agentForm.show(null);
  setCallState("idle");
  const saved = loadApiKey();
  if (saved) {
    ui.keyInput.value = saved;
    await useKey(saved, { announce: false });
  } else {
    ui.keyInput.focus();
  }
  document.body.dataset.ready = "true";
}

main();
