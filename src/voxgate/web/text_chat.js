// A text chat with a stored agent (a text session, HOSTED.md §5): mint a one-time token, open
// `/v1/ws?token=…`, bind the agent with input/output type "text", send each message as
// conversation.message, show the agent's words as they stream in (transcript.agent.delta), answer client
// tools with the page's handler. Reports through the same listener callbacks as a VoiceCall (plus
// agentDelta); never touches the DOM.

import { runToolCall } from "./tool_handler.js";

const TOKEN_WINDOW_SECONDS = 60;

export class TextChat {
  constructor({ api, agentId, toolHandler, listener, wsBase }) {
    this.api = api;
    this.agentId = agentId;
    this.toolHandler = toolHandler;
    this.listener = listener;
    this.wsBase = wsBase;
    this.ws = null;
    this.ready = null; // resolves once session.ready arrived
    this.texts = new Map(); // reply_id -> the text streamed so far
  }

  /** Open the session; resolves when it is ready. */
  async start() {
    const { token } = await this.api.mintToken({ expiresInSeconds: TOKEN_WINDOW_SECONDS });
    this.ws = new WebSocket(`${this.wsBase}/v1/ws?token=${encodeURIComponent(token)}`);
    this.ready = new Promise((resolve, reject) => {
      this.ws.onopen = () => this.#send({
        type: "session.update",
        session: { agent_id: this.agentId, input: { type: "text" }, output: { type: "text" } },
      });
      this.ws.onmessage = (message) => this.#onEvent(JSON.parse(message.data), resolve, reject);
      this.ws.onclose = () => {
        reject(new Error("The chat connection closed."));
        this.ws = null;
      };
    });
    return this.ready;
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  say(text) {
    this.listener.userFinal(text);
    this.#send({ type: "conversation.message", role: "user", content: text });
  }

  end() {
    if (this.open) this.#send({ type: "session.end" });
  }

  #send(message) {
    this.ws?.send(JSON.stringify(message));
  }

  #onEvent(event, resolve, reject) {
    switch (event.type) {
      case "session.ready":
        this.listener.ready(event.session_id);
        resolve();
        break;
      case "session.error":
        this.listener.notice(event.message || event.code);
        if (!event.code || event.code !== "internal_error") reject(new Error(event.message || event.code));
        break;
      case "reply.started":
        this.texts.set(event.reply_id, "");
        this.listener.replyStarted(event.reply_id);
        break;
      case "transcript.agent.delta": {
        const text = (this.texts.get(event.reply_id) ?? "") + event.delta;
        this.texts.set(event.reply_id, text);
        this.listener.agentText(event.reply_id, text, false);
        break;
      }
      case "transcript.agent":
        this.listener.agentText(event.reply_id, event.text, event.interrupted);
        break;
      case "reply.done":
        this.texts.delete(event.reply_id);
        this.listener.replyDone(event.reply_id, event.status || "completed");
        break;
      case "tool.call":
        this.#onToolCall(event);
        break;
      default:
        break; // transcript.user echoes what was typed (already shown)
    }
  }

  async #onToolCall(event) {
    const args = event.arguments ?? {};
    this.listener.toolCall({ ...event, arguments: args });
    const outcome = await runToolCall(this.toolHandler, event.name, args);
    const message = { type: "tool.result", call_id: event.call_id, result: outcome.result };
    if (outcome.isError) message.is_error = true;
    this.#send(message);
    this.listener.toolResult(event.call_id, { ...outcome, state: "sent" });
  }
}
