//! The web app and the REST API on a real local network with a dev chain: an origin relay run by the creator,
//! and the viewer's own node (`ferry relay` with the viewer's account) that the browser talks to.
//!
//! - A browser test: Debian's Chromium driven by Playwright (`tests/web/browser.mjs`) searches the catalogue,
//!   plays a video, tips, uploads a video, and watches the origin's operator dashboard until a settlement moves
//!   its earnings. Its screenshots are kept in `$CARGO_TARGET_DIR/web-screenshots`.
//! - A schema test: every route in `/api/openapi.json` is called, each answer checked against its schema, and
//!   every route that changes state refuses a missing or wrong token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ferry_tests::*;

const TITLE: &str = "Harbour at dawn";

/// The creator's origin relay (with the video published, registered and announced) and the viewer's node with
/// its API address and token.
struct Network {
    root: tempfile::TempDir,
    chain: TestChain,
    creator: Home,
    viewer: Home,
    _origin: Proc,
    origin_api: String,
    _node: Proc,
    api: String,
    token: String,
    cid: String,
}

fn token_of(home: &Home) -> Result<String> {
    Ok(std::fs::read_to_string(home.dir.join("api-token")).context("the node has no api-token")?.trim().to_string())
}

impl Network {
    fn start() -> Result<Network> {
        let root = test_root()?;
        let chain = TestChain::up()?;
        let creator = Home::dev(root.path(), "origin", "creator", 1000)?;
        let viewer = Home::dev(root.path(), "viewer", "viewer", 1000)?;
        let video = make_video(root.path(), 12)?;
        chain.ferry(&creator, &["operator", "register", "--price", PRICE, "--bond", BOND])?;
        let out = chain.ferry(
            &creator,
            &["publish", &video.to_string_lossy(), "--title", TITLE, "--share-bps", &SHARE_BPS.to_string()],
        )?;
        let cid = out.lines().last().context("publish printed no content id")?.trim().to_string();
        let origin_api = format!("127.0.0.1:{}", free_port()?);
        let (origin, origin_addr) = relay_on(&chain, &creator, &["--api", &origin_api])?;
        let api = format!("127.0.0.1:{}", free_port()?);
        let (node, _) = relay(&viewer, &["--chain", &chain.url, "--bootstrap", &origin_addr, "--api", &api])?;
        let token = token_of(&viewer)?;
        let net = Network { root, chain, creator, viewer, _origin: origin, origin_api, _node: node, api, token, cid };
        // The origin announces what it holds every few seconds; the viewer's node lists it once it heard.
        net.wait_json(&format!("/api/videos?q={}", "harbour"), Duration::from_secs(60), |v| {
            v["videos"].as_array().is_some_and(|a| a.iter().any(|x| x["cid"] == net.cid.as_str()))
        })?;
        Ok(net)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    fn wait_json(&self, path: &str, within: Duration, pred: impl Fn(&serde_json::Value) -> bool) -> Result<()> {
        let deadline = Instant::now() + within;
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            if let Ok((200, v)) = call(&self.url(path), "GET", None, None) {
                if pred(&v) {
                    return Ok(());
                }
                last = v;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!("GET {path} did not answer as expected within {within:?}; last: {last}")
    }
}

/// A request body: JSON, or raw bytes.
enum Body {
    Json(serde_json::Value),
    Bytes(Vec<u8>),
}

/// One HTTP call; returns the status and the JSON body (Null when the body is not JSON).
fn call(url: &str, method: &str, token: Option<&str>, body: Option<&Body>) -> Result<(u16, serde_json::Value)> {
    block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse()?, url).timeout(Duration::from_secs(180));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Some(Body::Json(v)) => req.json(v),
            Some(Body::Bytes(b)) => req.header("content-type", "application/octet-stream").body(b.clone()),
            None => req,
        };
        let r = req.send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)))
    })
}

/// A GET with the given `Host` header, as a browser sends it for a page on that name; returns the whole answer.
fn raw_get(addr: &str, path: &str, host: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web")
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| web_dir().join("../target"));
    target.join("web-screenshots")
}

#[test]
fn a_viewer_creator_and_operator_use_ferry_from_the_browser() -> Result<()> {
    ensure!(
        web_dir().join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in web/: run scripts/web"
    );
    let net = Network::start()?;
    let dir = net.root.path().join("upload");
    std::fs::create_dir_all(&dir)?;
    let upload = make_video(&dir, 4)?;
    let shots = screenshots();
    std::fs::create_dir_all(&shots)?;
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("web/browser.mjs"))
        .env("FERRY_APP_URL", format!("http://{}/#token={}", net.api, net.token))
        .env("FERRY_OPERATOR_URL", format!("http://{}/#token={}", net.origin_api, token_of(&net.creator)?))
        .env("FERRY_SEARCH", "Harbour")
        .env("FERRY_UPLOAD", &upload)
        .env("FERRY_SHOTS", &shots)
        .output()
        .context("cannot run node (scripts/setup installs it)")?;
    let said = String::from_utf8_lossy(&out.stdout);
    eprintln!("{said}{}", String::from_utf8_lossy(&out.stderr));
    ensure!(
        out.status.success(),
        "the browser test failed; screenshots in {}; node log {}",
        shots.display(),
        net.viewer.log("relay")
    );
    // What the page reported is what the chain and the node say.
    let block: u32 = said
        .lines()
        .find_map(|l| l.strip_prefix("tip block "))
        .and_then(|n| n.trim().parse().ok())
        .context("the browser test printed no tip block")?;
    ensure!(block > 0);
    let cid = said.lines().find_map(|l| l.strip_prefix("published ")).context("no published content id")?.trim();
    let (status, v) = call(&net.url(&format!("/api/videos/{cid}")), "GET", None, None)?;
    ensure!(status == 200 && v["title"] == "Uploaded in the browser test", "the upload is not in the catalogue: {v}");
    let client = net.chain.client(&net.viewer)?;
    let reg = block_on(client.content(ferry_node::identity::parse_hex32(cid).context("not a content id")?))?;
    ensure!(
        reg.map(|(c, _)| c) == Some(net.viewer.account_bytes()),
        "the upload was not registered on chain to its creator"
    );
    for page in ["catalogue", "catalogue-phone", "video", "creator", "operator"] {
        ensure!(shots.join(format!("{page}.png")).is_file(), "no screenshot of the {page} page");
    }
    Ok(())
}

/// What to send to each route of the document: path parameters and a body. A route the document lists and this
/// table does not is a failure, so a new route cannot go untested.
fn request_for(net: &Network, method: &str, path: &str, job: &str, video: &[u8]) -> Option<(String, Option<Body>)> {
    let relay = &net.creator.account;
    let p = path.replace("{cid}", &net.cid).replace("{job}", job).replace("{relay}", relay);
    let body = match (method, path) {
        ("get", _) => None,
        ("post", "/api/videos/{cid}/play") => None,
        ("post", "/api/videos/{cid}/tip") => Some(Body::Json(serde_json::json!({"amount": "1000000"}))),
        ("post", "/api/publish") => {
            return Some((format!("{p}?title=Schema%20test"), Some(Body::Bytes(video.to_vec()))))
        }
        ("post", "/api/money/lanes") => Some(Body::Json(serde_json::json!({"relay": relay, "amount": "1000000000"}))),
        ("post", "/api/money/lanes/{relay}/close") => None,
        _ => return None,
    };
    Some((p, body))
}

/// Validates `value` against `schema`, resolving `#/components/…` references in the whole document.
fn check_schema(doc: &serde_json::Value, schema: &serde_json::Value, value: &serde_json::Value) -> Result<()> {
    let mut root = schema.clone();
    if let Some(o) = root.as_object_mut() {
        o.insert("components".into(), doc["components"].clone());
        o.insert("$schema".into(), "https://json-schema.org/draft/2020-12/schema".into());
    }
    let v = jsonschema::validator_for(&root).map_err(|e| anyhow::anyhow!("bad schema {schema}: {e}"))?;
    let errors: Vec<String> = v.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    ensure!(errors.is_empty(), "{value} does not match {schema}: {errors:?}");
    Ok(())
}

#[test]
fn every_route_in_the_api_document_answers_to_its_schema_and_guards_its_state() -> Result<()> {
    let net = Network::start()?;
    let (status, doc) = call(&net.url("/api/openapi.json"), "GET", None, None)?;
    ensure!(status == 200 && doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "no OpenAPI 3 document");
    let dir = net.root.path().join("upload");
    std::fs::create_dir_all(&dir)?;
    let video = std::fs::read(make_video(&dir, 2)?)?;
    let paths = doc["paths"].as_object().context("the document has no paths")?;
    // Publishing first, so the job route has a job to show; closing the lane last, as it ends the lane.
    let mut routes: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| ops.as_object().into_iter().flatten().map(move |(m, _)| (m.clone(), p.clone())))
        .collect();
    let rank = |(m, p): &(String, String)| match (m.as_str(), p.as_str()) {
        ("post", "/api/publish") => 0,
        (_, p) if p.ends_with("/close") => 2,
        _ => 1,
    };
    routes.sort_by_key(rank);
    ensure!(routes.len() >= 13, "the document lists {} routes", routes.len());
    let mut job = String::from("none");
    let mut checked = vec![];
    for (method, path) in &routes {
        let op = &doc["paths"][path][method];
        let (url_path, body) = request_for(&net, method, path, &job, &video)
            .with_context(|| format!("no request for {method} {path}: add it to request_for"))?;
        let url = net.url(&url_path);
        let guarded = op["security"].as_array().is_some_and(|s| !s.is_empty());
        if guarded {
            for token in [None, Some("0".repeat(64).as_str())] {
                let (status, v) = call(&url, &method.to_uppercase(), token, body.as_ref())?;
                ensure!(status == 401, "{method} {path} with token {token:?} answered {status}, not 401: {v}");
                check_schema(&doc, &op["responses"]["401"]["content"]["application/json"]["schema"], &v)?;
            }
        } else {
            ensure!(method == "get", "{method} {path} changes state but needs no token");
        }
        let (status, v) = call(&url, &method.to_uppercase(), Some(&net.token), body.as_ref())?;
        let answer = &op["responses"][status.to_string()];
        ensure!((200..300).contains(&status), "{method} {path} answered {status}: {v}");
        ensure!(!answer.is_null(), "{method} {path} answered {status}, which the document does not list");
        check_schema(&doc, &answer["content"]["application/json"]["schema"], &v)
            .with_context(|| format!("{method} {path}"))?;
        if path == "/api/publish" {
            job = v["job"].as_str().context("no job id")?.to_string();
            net.wait_json(&format!("/api/publish/{job}"), Duration::from_secs(120), |j| j["state"] == "done")?;
        }
        checked.push(format!("{method} {path}"));
    }
    // Errors answer to their schemas too.
    let (status, v) = call(&net.url(&format!("/api/videos/{}", "ab".repeat(32))), "GET", None, None)?;
    ensure!(status == 404, "an unknown video answered {status}");
    check_schema(
        &doc,
        &doc["paths"]["/api/videos/{cid}"]["get"]["responses"]["404"]["content"]["application/json"]["schema"],
        &v,
    )?;
    let (status, _) = call(&net.url("/api/videos/not-hex"), "GET", None, None)?;
    ensure!(status == 400, "a malformed content id answered {status}");
    // A page of another site that pointed its own name at 127.0.0.1 (DNS rebinding) is refused, token or not.
    let answer = raw_get(&net.api, "/api/status", "rebind.example.com")?;
    ensure!(answer.starts_with("HTTP/1.1 421"), "a request to another host name was answered: {answer}");
    ensure!(raw_get(&net.api, "/api/status", "localhost")?.starts_with("HTTP/1.1 200"), "localhost was refused");
    eprintln!("checked: {checked:#?}");
    Ok(())
}
