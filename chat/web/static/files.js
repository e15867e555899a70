/**
 * File upload over HTTP (PROTOCOL.md section 9): POST /files?to=TARGET&name=NAME
 * with the bytes as the body and `Authorization: Bearer TOKEN`, through
 * XMLHttpRequest for its upload progress. Download links and image previews
 * use GET /files/ID?token=TOKEN.
 */

const IMAGE_NAME = /\.(png|jpe?g|gif|webp)$/i;

/** Whether a file name looks like an image the page previews. */
export function isImageName(name) {
  return IMAGE_NAME.test(String(name || ""));
}

/** The download URL of an offer. */
export function fileUrl(id, token) {
  return `/files/${encodeURIComponent(id)}?token=${encodeURIComponent(token)}`;
}

/**
 * Upload one file.
 * @param {File|Blob} file
 * @param {string} target a nick or #room
 * @param {string} token the session's bearer token
 * @param {(sent: number, total: number) => void} onProgress
 * @returns {{promise: Promise<object>, abort: () => void}} resolves with the
 *   201 JSON {id, name, size, sha256}; rejects with an Error whose message
 *   is readable (the daemon's {code, message} when it sent one)
 */
export function upload(file, target, token, onProgress) {
  const xhr = new XMLHttpRequest();
  const name = file.name || "file";
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", `/files?to=${encodeURIComponent(target)}&name=${encodeURIComponent(name)}`);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (e) {
        body = null;
      }
      if (xhr.status === 201 || xhr.status === 200) {
        onProgress(file.size, file.size);
        resolve(body || {});
      } else {
        const why = body && body.message ? body.message : `HTTP ${xhr.status}`;
        const err = new Error(why);
        err.code = body && body.code ? body.code : String(xhr.status);
        reject(err);
      }
    });
    xhr.addEventListener("error", () => reject(new Error("the upload failed: connection lost")));
    xhr.addEventListener("abort", () => reject(new Error("the upload was cancelled")));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}
