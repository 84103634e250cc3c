// Files from the two inputs and from drops, folders included, as {file, relativePath}.
// relativePath is the path inside a chosen or dropped folder ("scene/cam1/clip.mp4"), or ''.

export function filesFromInput(input) {
  return [...input.files].map((file) => ({ file, relativePath: file.webkitRelativePath || '' }));
}

/** Everything dropped, walking into folders. */
export async function filesFromDrop(dataTransfer) {
  // Entries must be taken while the drop event is being handled; the walk can come later.
  const items = dataTransfer.items ? [...dataTransfer.items].filter((item) => item.kind === 'file') : [];
  const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (entries.length === 0 || entries.some((entry) => !entry)) {
    return [...dataTransfer.files].map((file) => ({ file, relativePath: '' }));
  }
  const found = [];
  for (const entry of entries) await walk(entry, found);
  return found;
}

async function walk(entry, found) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    const path = entry.fullPath.replace(/^\/+/, '');
    found.push({ file, relativePath: path.includes('/') ? path : '' });
    return;
  }
  if (!entry.isDirectory) return;
  const reader = entry.createReader();
  // readEntries answers in batches (100 in Chromium): read until it answers with none.
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, found);
  }
}
