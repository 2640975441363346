// Helpers shared by the matters and matter pages (and the exports pages' matter links).

// "a@x.cn, b@x.cn\nc@x.cn" → ["a@x.cn", "b@x.cn", "c@x.cn"]: commas, Chinese commas, semicolons
// or new lines separate the entries of a list field
export function listOf(text) {
  return (text || "")
    .split(/[\n,，;；、]+/)
    .map((item) => item.trim())
    .filter(Boolean);
}

// wait `delay` ms after the last call before running: a live count asks once typing pauses;
// .cancel() drops a pending run (the form was sent or reset meanwhile)
export function debounced(run, delay) {
  let timer = 0;
  const later = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => run(...args), delay);
  };
  later.cancel = () => clearTimeout(timer);
  return later;
}
