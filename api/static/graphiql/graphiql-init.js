// Mounts GraphiQL with the explorer plugin against this page's own /graphql endpoint.
// Served from the app (no CDN); kept out of the page so the page needs no inline script.
(function () {
  "use strict";

  const EXAMPLE_QUERY = `# media-service GraphQL explorer
#
# Paste a bearer token in the Headers pane below, for example:
#   {"Authorization": "Bearer <token from media-service dev-token>"}
#
# Run with Ctrl-Enter.
query Me {
  me {
    subject
    scopes
  }
}
`;

  const parameters = {};
  for (const entry of window.location.search.slice(1).split("&")) {
    const eq = entry.indexOf("=");
    if (eq >= 0) {
      parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(
        entry.slice(eq + 1),
      );
    }
  }

  // Queries and variables are shareable through the URL; headers (tokens) never are.
  function updateURL(data) {
    Object.assign(parameters, data);
    const search = Object.keys(parameters)
      .filter((key) => key !== "headers" && Boolean(parameters[key]))
      .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
      .join("&");
    history.replaceState(null, "", "?" + search);
  }

  const fetcher = GraphiQL.createFetcher({
    url: window.location.href.split("?")[0],
    headers: {},
  });

  function GraphiQLWithExplorer() {
    const [query, setQuery] = React.useState(parameters.query || parameters.q || EXAMPLE_QUERY);
    const [variables, setVariables] = React.useState(parameters.variables);
    const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorerPlugin],
      query: query,
      variables: variables,
      onEditQuery: function (value) {
        setQuery(value);
        updateURL({ q: value });
      },
      onEditVariables: function (value) {
        setVariables(value);
        updateURL({ variables: value });
      },
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      // A bearer token in localStorage outlives the tab and is readable by any script here.
      shouldPersistHeaders: false,
    });
  }

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQLWithExplorer));
})();
