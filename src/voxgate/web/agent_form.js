// The agent editor form <-> the REST agent body (PROTOCOL.md §3.1). Client-side checks only catch
// what the form itself can get wrong (empty required fields, tools that are not JSON); everything else
// is validated by the server and its 422 messages are shown as they come.

export class AgentForm {
  constructor(form) {
    this.form = form;
    this.fields = {
      name: form.querySelector("#agent-name"),
      voice: form.querySelector("#agent-voice"),
      prompt: form.querySelector("#agent-prompt"),
      greeting: form.querySelector("#agent-greeting"),
      threshold: form.querySelector("#td-threshold"),
      minSilence: form.querySelector("#td-min"),
      maxSilence: form.querySelector("#td-max"),
      interrupt: form.querySelector("#td-interrupt"),
      tools: form.querySelector("#agent-tools"),
    };
    this.agent = null; // the full record being edited, or null for a new agent
  }

  setVoices(voices, defaultVoice) {
    const select = this.fields.voice;
    select.replaceChildren(
      ...voices.map(({ voice_id: id, gender, plays }) => {
        const option = document.createElement("option");
        option.value = id;
        const label = `${id[0].toUpperCase()}${id.slice(1)} (${gender})`;
        option.textContent = plays ? `${label}: ${plays}` : label;  // what this server really plays
        return option;
      }),
    );
    select.value = defaultVoice;
    this.defaultVoice = defaultVoice;
  }

  /** Show `agent` (a full record) for editing, or an empty form for a new agent. */
  show(agent) {
    this.agent = agent;
    const f = this.fields;
    const turn = agent?.input?.turn_detection ?? {};
    f.name.value = agent?.name ?? "";
    const voice = agent?.voice?.voice_id ?? this.defaultVoice;
    if (voice && ![...f.voice.options].some((o) => o.value === voice)) {
      f.voice.append(new Option(voice, voice));
    }
    f.voice.value = voice;
    f.prompt.value = agent?.system_prompt ?? "";
    f.greeting.value = agent?.greeting ?? "";
    f.threshold.value = turn.vad_threshold ?? 0.5;
    f.minSilence.value = turn.min_silence ?? "";  // empty: not set, the server's adaptive default
    f.maxSilence.value = turn.max_silence ?? "";
    f.interrupt.checked = turn.interrupt_response ?? true;
    f.tools.value = JSON.stringify(agent?.tools ?? [], null, 2);
    this.clearInvalid();
  }

  /** `{ body }` ready for POST/PUT, or `{ error, field }` naming the first problem. */
  read() {
    this.clearInvalid();
    const f = this.fields;
    const name = f.name.value.trim();
    if (!name) return this.#invalid(f.name, "Give the agent a name.");
    const prompt = f.prompt.value.trim();
    if (!prompt) return this.#invalid(f.prompt, "Write a system prompt: it tells the agent who it is.");
    let tools;
    try {
      tools = JSON.parse(f.tools.value.trim() || "[]");
    } catch (error) {
      return this.#invalid(f.tools, `Tools must be a JSON array: ${error.message}`);
    }
    if (!Array.isArray(tools)) return this.#invalid(f.tools, "Tools must be a JSON array ([] for none).");
    const numbers = {};
    const unset = [];
    for (const [key, input] of [["vad_threshold", f.threshold], ["min_silence", f.minSilence], ["max_silence", f.maxSilence]]) {
      if (key !== "vad_threshold" && input.value.trim() === "") {
        unset.push(key);  // a silence left empty is not sent: the adaptive default applies
        continue;
      }
      const value = Number(input.value);
      if (input.value === "" || !Number.isFinite(value)) return this.#invalid(input, `${input.labels[0].textContent} must be a number.`);
      numbers[key] = key === "vad_threshold" ? value : Math.round(value);
    }
    const previousInput = this.agent?.input ?? {};
    const turnDetection = {
      ...(previousInput.turn_detection ?? {}),
      ...numbers,
      interrupt_response: f.interrupt.checked,
    };
    for (const key of unset) delete turnDetection[key];
    const body = {
      name,
      system_prompt: prompt,
      voice: { voice_id: f.voice.value },
      greeting: f.greeting.value.trim() || null,
      input: { ...previousInput, turn_detection: turnDetection },
      tools,
    };
    if (!this.agent && body.greeting === null) delete body.greeting;
    return { body };
  }

  /** Mark the fields a server 422 names (e.g. "tools[0].name" -> the tools box). */
  markServerErrors(fields) {
    const byParam = {
      name: this.fields.name, system_prompt: this.fields.prompt, voice: this.fields.voice,
      greeting: this.fields.greeting, tools: this.fields.tools, input: this.fields.minSilence,
    };
    for (const { param } of fields) {
      const root = String(param || "").split(/[.[]/)[0];
      const element = root === "input" && /vad_threshold/.test(param) ? this.fields.threshold
        : root === "input" && /max_silence/.test(param) ? this.fields.maxSilence : byParam[root];
      element?.setAttribute("aria-invalid", "true");
    }
  }

  clearInvalid() {
    this.form.querySelectorAll("[aria-invalid]").forEach((element) => element.removeAttribute("aria-invalid"));
  }

  #invalid(element, error) {
    element.setAttribute("aria-invalid", "true");
    element.focus();
    return { error };
  }
}
