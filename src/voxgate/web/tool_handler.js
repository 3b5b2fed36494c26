// The page's client-side tool handler: an ES module the user edits on the page. Its default export
// `(name, args)` returns the tool result (any JSON value, or a string sent as is).

export const DEFAULT_TOOL_HANDLER_SOURCE = `// Runs in this page when the agent calls a tool that has no "http" block.
// Return any JSON value (or a string); throw to report an error to the agent.
export default async function handleTool(name, args) {
  if (name === "get_weather") {
    return { location: args.location, temp_c: 22, sky: "sunny" };
  }
  if (name === "get_time") {
    return { time: new Date().toLocaleTimeString() };
  }
  throw new Error(\`no handler for \${name}\`);
}
`;

export const EXAMPLE_TOOLS = [
  {
    type: "function",
    name: "get_weather",
    description: "Current weather for a city.",
    parameters: {
      type: "object",
      properties: { location: { type: "string", description: "City name" } },
      required: ["location"],
    },
  },
];

/** Compile the handler source; throws an Error with a readable message when it is unusable. */
export async function compileToolHandler(source) {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  let module;
  try {
    module = await import(url);
  } catch (error) {
    throw new Error(`The tool handler does not compile: ${error.message || error}`);
  } finally {
    URL.revokeObjectURL(url);
  }
  if (typeof module.default !== "function") {
    throw new Error("The tool handler must `export default` a function (name, args).");
  }
  return module.default;
}

/** Run one call: `{ result: string, isError: boolean }`. Never throws. */
export async function runToolCall(handler, name, args, timeoutMs = 30000) {
  let timer;
  try {
    const value = await Promise.race([
      Promise.resolve().then(() => handler(name, args)),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
    const result = typeof value === "string" ? value : JSON.stringify(value ?? null);
    return { result, isError: false };
  } catch (error) {
    return { result: JSON.stringify({ error: String(error?.message || error) }), isError: true };
  } finally {
    clearTimeout(timer);
  }
}
