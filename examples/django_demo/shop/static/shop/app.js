// gantry demo shop: small progressive enhancements; the pages work without JS.
document.addEventListener("DOMContentLoaded", () => {
  // Highlight the product row under the pointer.
  document.querySelectorAll("table.products tbody tr").forEach((row) => {
    row.addEventListener("mouseenter", () => row.classList.add("row-hover"));
    row.addEventListener("mouseleave", () => row.classList.remove("row-hover"));
  });

  // Send the upload form with fetch and show the JSON answer in place.
  const form = document.getElementById("upload-form");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = document.getElementById("upload-result");
      const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
      out.textContent = JSON.stringify(await response.json(), null, 2);
    });
  }
});
