// One voice call against the public API: mint a one-time token with the API key (REST), open
// `/v1/ws?token=…`, bind the stored agent, stream the microphone, play replies, answer client tools.
// The call reports everything through `listener` callbacks; it never touches the DOM.

import { openMicrophone } from "./microphone.js";
import { PlaybackQueue } from "./playback.js";
import { TurnLatency } from "./latency.js";
import { runToolCall } from "./tool_handler.js";

const HANGUP_GRACE_MS = 3000;
// The server keeps a dropped session for 30 s (PROTOCOL.md §10); try to resume it for most of that.
const RESUME_WINDOW_MS = 25000;
const RESUME_RETRY_MS = 1000;
const TOKEN_WINDOW_SECONDS = 60;

export class CallError extends Error {}

/**
 * listener: {
 *   state(state, detail)            "connecting" | "live" | "ending" | "idle"
 *   failed(message)                 the call ended because of a problem (in words)
 *   notice(message)                 a non-fatal problem reported by the server during the call
 *   ready(sessionId) / resumed(sessionId)
 *   userPartial(text) / userFinal(text) / userSpeaking()
 *   replyStarted(replyId) / agentText(replyId, text, interrupted) / replyDone(replyId, status)
 *   toolCall(call) / toolResult(callId, {result, isError, state})   state: "sent" | "discarded"
 *   latency(replyId, ms)
 *   micLevel(rms)
 *   audio(stats)
 * }
 */
export class VoiceCall {
  constructor({ api, agentId, toolHandler, listener, wsBase = defaultWsBase() }) {
    this.api = api;
    this.agentId = agentId;
    this.toolHandler = toolHandler;
    this.listener = listener;
    this.wsBase = wsBase;
    this.state = "idle";
    this.ws = null;
    this.context = null;
    this.microphone = null;
    this.playback = null;
    this.latency = new TurnLatency();
    this.sessionId = null;
    this.resumeToken = null; // from session.ready: the credential that resumes this session
    this.ready = false;
    this.ended = false; // session.ended received
    this.fatal = null; // message of a session.error that closes the call
    this.replyId = null;
    this.replyHasAudio = false;
    this.calls = new Map(); // call_id -> { call, replyId, replyDone, outcome, state }
    this.replyDoneIsLatest = false;
    this.hangupTimer = null;
    this.onResumed = null; // set while a session.resume is in flight
    this.endResumeAttempt = null; // resolves the pending resume attempt when the call is torn down
  }

  /** Start the call. Must be called from a user gesture (it creates the AudioContext). The microphone
   * opens once the session is ready, so nothing the user says before that is lost silently. */
  async start() {
    this.#setState("connecting", "Getting a one-time token…");
    this.context = new AudioContext({ latencyHint: "interactive" });
    try {
      await this.context.resume();
      this.playback = new PlaybackQueue(this.context);
      const { token } = await this.api.mintToken({ expiresInSeconds: TOKEN_WINDOW_SECONDS });
      if (this.state !== "connecting") return; // cancelled meanwhile
      this.#setState("connecting", "Connecting…");
      this.#open(`${this.wsBase}/v1/ws?token=${encodeURIComponent(token)}`);
    } catch (error) {
      this.#finish(error.message || String(error));
    }
  }

  async #openMicrophone() {
    this.#setState("connecting", "Opening the microphone…");
    try {
      this.microphone = await openMicrophone(this.context, (pcm, rms) => this.#onMicChunk(pcm, rms));
    } catch (error) {
      // End the session we opened (it is not resumable after session.end) and report in words.
      this.#send({ type: "session.end" });
      this.#finish(error.message || String(error));
      return;
    }
    if (this.state !== "connecting") {
      this.microphone.close();
      this.microphone = null;
      return;
    }
    this.#setState("live", "Live");
  }

  /** Hang up politely (session.end), or cancel a call still connecting. */
  hangUp() {
    if (this.state === "idle" || this.state === "ending") return;
    if (!this.ready || this.ws?.readyState !== WebSocket.OPEN) {
      this.#finish(null);
      return;
    }
    this.#setState("ending", "Ending the call…");
    this.#send({ type: "session.end" });
    this.playback?.flush();
    this.hangupTimer = setTimeout(() => this.#finish(null), HANGUP_GRACE_MS);
  }

  // --- WebSocket ---------------------------------------------------------------------------------
  #open(url) {
    const ws = this.#connect(url);
    ws.onopen = () => this.#send({ type: "session.update", session: { agent_id: this.agentId } });
    ws.onclose = (close) => this.#onClose(close);
  }

  #connect(url) {
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        this.listener.notice("The server sent a message that is not JSON; ignored.");
        return;
      }
      this.#handle(event);
    };
    return ws;
  }

  #send(event) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(event));
  }

  #onClose(close) {
    if (this.state === "idle") return;
    if (this.ended || this.state === "ending") {
      this.#finish(null);
      return;
    }
    if (this.fatal) {
      this.#finish(this.fatal);
      return;
    }
    if (!this.ready && close.code === 1006) {
      this.#finish("Could not connect to the voxgate server (the WebSocket closed before it opened). Check the server and press Talk again.");
      return;
    }
    const code = close.code ? ` (code ${close.code}${close.reason ? `: ${close.reason}` : ""})` : "";
    if (this.ready) {
      this.#resume(code);
      return;
    }
    this.#finish(`The server closed the connection before the session was ready${code}. Press Talk to start a new call.`);
  }

  // A connection dropped without session.ended: resume the same session on a new connection with the
  // session's resume token from session.ready (HOSTED.md §4; a fresh one-time token if the server sent
  // none), retrying while the server is unreachable, for RESUME_WINDOW_MS.
  async #resume(code) {
    this.ready = false;
    this.ws = null;
    this.#flushPlayback();
    this.#setState("connecting", "Reconnecting…");
    this.listener.notice(`The connection dropped${code}. Resuming the session…`);
    const deadline = performance.now() + RESUME_WINDOW_MS;
    while (this.state === "connecting" && performance.now() < deadline) {
      let token = this.resumeToken;
      if (token === null) {
        try {
          ({ token } = await this.api.mintToken({ expiresInSeconds: TOKEN_WINDOW_SECONDS }));
        } catch {
          // the server is not back yet
        }
      }
      if (this.state !== "connecting") return;
      if (token !== null) {
        const outcome = await this.#attemptResume(token);
        if (outcome !== "closed") return;
      }
      await new Promise((resolve) => setTimeout(resolve, RESUME_RETRY_MS));
    }
    if (this.state === "connecting") {
      this.#finish(`The connection to the server was lost${code} and the session could not be resumed. Press Talk to start a new call.`);
    }
  }

  /** "ready" (resumed), "rejected" (the server refused: the call is over) or "closed" (try again). */
  #attemptResume(token) {
    return new Promise((resolve) => {
      this.endResumeAttempt = () => resolve("rejected");
      const ws = this.#connect(`${this.wsBase}/v1/ws?token=${encodeURIComponent(token)}`);
      ws.onopen = () => this.#send({ type: "session.resume", session_id: this.sessionId });
      ws.onclose = () => {
        this.endResumeAttempt = null;
        if (this.fatal) {
          this.#finish(this.fatal);
          resolve("rejected");
        } else {
          resolve("closed");
        }
      };
      this.onResumed = () => {
        this.endResumeAttempt = null;
        ws.onclose = (close) => this.#onClose(close);
        resolve("ready");
      };
    });
  }

  #handle(event) {
    switch (event.type) {
      case "session.ready":
        this.ready = true;
        this.sessionId = event.session_id;
        this.resumeToken = typeof event.resume_token === "string" ? event.resume_token : null;
        if (this.onResumed) {
          this.onResumed();
          this.onResumed = null;
          this.#setState(this.microphone ? "live" : "connecting", "Live");
          this.listener.resumed(event.session_id);
          if (!this.microphone) this.#openMicrophone();
        } else {
          this.listener.ready(event.session_id);
          this.#openMicrophone();
        }
        break;
      case "session.updated":
        break;
      case "session.error":
        this.#onSessionError(event);
        break;
      case "session.ended":
        this.ended = true;
        break;
      case "input.speech.started":
        this.replyDoneIsLatest = false;
        this.latency.userStarted();
        this.#flushPlayback();
        this.listener.userSpeaking();
        break;
      case "input.speech.stopped":
        this.latency.userStopped();
        break;
      case "transcript.user.delta":
        this.listener.userPartial(event.text ?? "");
        break;
      case "transcript.user":
        this.listener.userFinal(event.text ?? "");
        break;
      case "reply.started":
        this.replyDoneIsLatest = false;
        this.replyId = event.reply_id ?? null;
        this.replyHasAudio = false;
        this.playback.startReply();
        this.listener.replyStarted(this.replyId);
        break;
      case "reply.audio":
        this.#onReplyAudio(event);
        break;
      case "transcript.agent":
        if (event.interrupted) this.#flushPlayback();
        this.listener.agentText(event.reply_id ?? this.replyId, event.text ?? "", Boolean(event.interrupted));
        break;
      case "reply.done":
        this.#onReplyDone(event);
        break;
      case "tool.call":
        this.#onToolCall(event);
        break;
      default:
        break; // unknown events are ignored (PROTOCOL.md §4.3)
    }
  }

  #onSessionError(event) {
    const code = String(event.code || "");
    const message = describeSessionError(code, event.message || "");
    if (this.onResumed && !RESUME_REFUSED_CODES.has(code.toLowerCase())) {
      return; // a resume attempt hit a draining or busy instance: the close follows and we retry
    }
    if (FATAL_CODES.has(code.toLowerCase()) || !this.ready) this.fatal = message;
    else this.listener.notice(message);
  }

  // --- audio -------------------------------------------------------------------------------------
  #onMicChunk(pcm, rms) {
    this.latency.micChunk(rms);
    this.listener.micLevel(rms);
    if (!this.ready || this.state !== "live") return;
    this.#send({ type: "input.audio", audio: bytesToBase64(new Uint8Array(pcm)) });
  }

  #onReplyAudio(event) {
    if (!this.ready || this.state === "idle" || typeof event.data !== "string") return;
    let bytes;
    try {
      bytes = base64ToBytes(event.data);
    } catch {
      this.listener.notice("The server sent audio that is not valid base64; skipped.");
      return;
    }
    const playAt = this.playback.enqueue(bytes);
    if (!this.replyHasAudio) {
      this.replyHasAudio = true;
      const ms = this.latency.firstAudio(playAt);
      if (ms !== null) this.listener.latency(event.reply_id ?? this.replyId, ms);
    }
    this.listener.audio(this.audioStats());
  }

  #flushPlayback() {
    if (!this.playback) return;
    this.playback.flush();
    this.listener.audio(this.audioStats());
  }

  audioStats() {
    const p = this.playback;
    if (!p) return null;
    return { ...p.stats, bufferedSeconds: p.bufferedSeconds, playedSeconds: p.playedSeconds };
  }

  // --- client tools (PROTOCOL.md §5.4, §8.2) ------------------------------------------------------
  #onToolCall(event) {
    const args = event.arguments ?? event.args ?? {};
    const record = { call: { ...event, arguments: args }, replyId: this.replyId, replyDone: false, outcome: null, state: "running" };
    this.calls.set(event.call_id, record);
    this.listener.toolCall(record.call);
    runToolCall(this.toolHandler, event.name, args).then((outcome) => {
      record.outcome = outcome;
      if (record.state === "running") record.state = "ready";
      this.#deliverToolResults();
    });
  }

  #onReplyDone(event) {
    const replyId = event.reply_id ?? this.replyId;
    const interrupted = event.status === "interrupted";
    if (interrupted) this.#flushPlayback();
    for (const record of this.calls.values()) {
      if (record.replyId !== replyId || record.replyDone) continue;
      record.replyDone = true;
      if (interrupted) this.#discard(record);
    }
    this.replyDoneIsLatest = !interrupted;
    this.listener.replyDone(replyId, event.status || "completed");
    this.#deliverToolResults();
  }

  #deliverToolResults() {
    if (!this.replyDoneIsLatest || !this.ready || this.state === "idle") return;
    for (const [callId, record] of this.calls) {
      if (record.state !== "ready" || !record.replyDone) continue;
      const message = { type: "tool.result", call_id: callId, result: record.outcome.result };
      if (record.outcome.isError) message.is_error = true;
      this.#send(message);
      record.state = "sent";
      this.listener.toolResult(callId, { ...record.outcome, state: "sent" });
      this.calls.delete(callId);
    }
  }

  #discard(record) {
    record.state = "discarded";
    this.calls.delete(record.call.call_id);
    this.listener.toolResult(record.call.call_id, { result: "", isError: false, state: "discarded" });
  }

  // --- life cycle ---------------------------------------------------------------------------------
  #setState(state, detail) {
    this.state = state;
    this.listener.state(state, detail);
  }


  #finish(failure) {
    if (this.state === "idle") return;
    clearTimeout(this.hangupTimer);
    this.state = "idle";
    this.onResumed = null;
    const endResumeAttempt = this.endResumeAttempt;
    this.endResumeAttempt = null;
    endResumeAttempt?.();
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null;
      if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    }
    this.microphone?.close();
    this.microphone = null;
    if (this.playback) {
      this.playback.close();
      this.listener.audio(this.audioStats());
    }
    this.context?.close().catch(() => {});
    for (const record of this.calls.values()) this.#discard(record);
    this.listener.micLevel(0);
    if (failure) this.listener.failed(failure);
    this.listener.state("idle", failure ? "Call failed" : "Call ended");
  }
}

// Codes that end the call once it is live (internal_error does not: a failed reply or a storage outage
// is reported and the call goes on; a fatal one is followed by the close).
const FATAL_CODES = new Set([
  "unauthorized", "session_not_found", "session_forbidden", "session_expired", "agent_not_found",
  "at_capacity", "concurrency_exceeded",
]);

// Answers to session.resume that mean the session is gone for good (anything else is retried).
const RESUME_REFUSED_CODES = new Set(["session_not_found", "session_forbidden", "unauthorized"]);

export function describeSessionError(code, message) {
  switch (code.toLowerCase()) {
    case "unauthorized":
      return "The server rejected the session token: it expired or was already used. Press Talk to try again with a fresh token.";
    case "session_not_found":
      return "The call could not be resumed: the server no longer has this session. Press Talk to start a new call.";
    case "session_forbidden":
      return "The call could not be resumed: the session belongs to another account.";
    case "agent_not_found":
      return "The agent was not found: it may have been deleted. Pick another agent and press Talk again.";
    case "session_expired":
      return "The call reached its maximum duration and was ended by the server.";
    case "internal_error":
    case "at_capacity":
    case "concurrency_exceeded":
      return `The server could not run the session${message ? `: ${message}` : ""}. Press Talk to try again.`;
    default:
      return `${code || "error"}: ${message || "the server reported a problem"}`;
  }
}

export function defaultWsBase() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
}

export function bytesToBase64(bytes) {
  let binary = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) binary += String.fromCharCode(...bytes.subarray(i, i + step));
  return btoa(binary);
}

export function base64ToBytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
