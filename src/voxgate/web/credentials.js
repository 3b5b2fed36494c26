// The API key lives in this tab's session storage only: it survives a reload, not the tab.
const STORAGE_KEY = "voxgate.apiKey";

export function loadApiKey() {
  try {
    return sessionStorage.getItem(STORAGE_KEY) || "";
  } catch {
    return "";
  }
}

export function saveApiKey(key) {
  try {
    sessionStorage.setItem(STORAGE_KEY, key);
  } catch {
    // Storage disabled (private mode quirks): the key still works until the page reloads.
  }
}

export function forgetApiKey() {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
}
