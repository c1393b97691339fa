// The server's event stream (GET /api/v1/events), read with fetch so the API key goes in a
// header (EventSource cannot send one). Reconnects after a pause; tells whether it is connected.

import { apiUrl, authHeaders } from "./api.js";

const RECONNECT_MS = 2000;

function parseFrame(frame) {
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return null;
  try {
    return JSON.parse(data.join("\n"));
  } catch {
    return null;
  }
}

/** Call onEvent(event) for each status change; onState(true|false) as the stream comes and
 * goes. Returns a function that stops it. */
export function subscribe(onEvent, onState) {
  let stopped = false;
  let controller = null;

  async function readOnce() {
    controller = new AbortController();
    const response = await fetch(apiUrl("events"), {
      headers: { Accept: "text/event-stream", ...authHeaders() },
      signal: controller.signal,
      cache: "no-store",
    });
    if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
    onState(true);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) onEvent(event);
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await readOnce();
      } catch {
        // fall through: reconnect below
      }
      if (stopped) return;
      onState(false);
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  })();

  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
