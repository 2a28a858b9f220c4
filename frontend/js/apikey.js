/**
 * The in-page API key form, shown when the API answers 401.
 * A form (not window.prompt) keeps it accessible, styleable and testable.
 */

import { getApiKey, setApiKey } from './api.js';

/**
 * @param {{form: HTMLFormElement, input: HTMLInputElement, message: HTMLElement,
 *          cancelButton: HTMLButtonElement, headerButton: HTMLButtonElement,
 *          onKeySaved: () => void}} elements
 * @returns {{ask: (error: Error) => Promise<string>}}
 */
export function createKeyPrompt({ form, input, message, cancelButton, headerButton, onKeySaved }) {
  let pending = null; // {resolve, reject} while the form is open for a request
  let declined = false; // after "Cancel", stop nagging; the header button re-opens the form
  let returnFocus = null;

  function open(text) {
    if (form.hidden) returnFocus = document.activeElement;
    message.textContent = text;
    form.hidden = false;
    headerButton.hidden = false;
    input.value = '';
    input.focus();
  }

  function close() {
    form.hidden = true;
    // Give focus back to where the user was (e.g. the drop zone), not to the top of the page.
    const target = returnFocus instanceof HTMLElement && returnFocus.isConnected ? returnFocus : headerButton;
    target.focus();
    returnFocus = null;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    setApiKey(key);
    close();
    declined = false;
    if (pending) pending.resolve(key);
    else onKeySaved();
    pending = null;
  });

  cancelButton.addEventListener('click', () => {
    close();
    declined = true;
    if (pending) pending.reject(new Error('API key prompt dismissed'));
    pending = null;
  });

  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') cancelButton.click();
  });

  headerButton.addEventListener('click', () => {
    open('Enter the API key for this service. It is kept only for this browser tab.');
  });

  /**
   * Called by api.js on 401. Resolves with the key the user typed.
   * @param {{message: string}} error the server's 401 error
   */
  function ask(error) {
    if (declined) return Promise.reject(new Error('API key prompt dismissed'));
    const text = getApiKey()
      ? `The API key was not accepted (${error.message}). Please enter a valid key.`
      : 'This service needs an API key. It is kept only for this browser tab.';
    return new Promise((resolve, reject) => {
      pending = { resolve, reject };
      open(text);
    });
  }

  return { ask };
}
